"""Labelling, discovery's clustering, the Missing-Skill-Profile and the teacher's parsers, offline.

The embed labeller runs the real all-MiniLM-L6-v2 from its PyPI package; the teacher-driven parts
are exercised end to end against a real server in test_teacher.py.
"""

import json
from collections import Counter

import pytest

from conftest import run_cli, shared_data
from skillgap.diagnose import Diagnosis, diagnosis_chat, format_failures, missing_skill_profile, wrong
from skillgap.discover import cluster, parse_cluster, parse_names
from skillgap.grade import Grade
from skillgap.items import Item, read_jsonl
from skillgap.judge import parse_verdict
from skillgap.label import LabelConfig, choose_skills, fit_weight, label_items, labelled_examples, pick
from skillgap.profile import Record
from skillgap.skills import Skill, SkillSet, load_inventory
from skillgap.teacher import Cache, Invalid, call_key, json_in

INV = SkillSet((Skill("addition", "Addition", "adding whole numbers together to find a sum"),
                Skill("triangles", "Triangle geometry", "angles, sides and areas of triangles"),
                Skill("percent", "Percentages", "computing a percentage of a quantity, discounts and interest")))


def item(i: int, text: str) -> Item:
    return Item(id=f"q{i}", prompt=text, answer="0", skills=())


def test_embed_labeller_matches_descriptions():
    items = [item(0, "What is 17 plus 25? Add the two numbers."),
             item(1, "A triangle has angles of 50 and 60 degrees. What is the third angle?"),
             item(2, "A $80 jacket is sold at a 25% discount. What is the sale price?")]
    out = label_items(items, INV, LabelConfig())
    assert [it.skills for it in out] == [("addition",), ("triangles",), ("percent",)]
    meta = out[0].metadata["labels"]
    assert meta["labeler"] == "embed" and meta["status"] == "ok"
    assert list(meta["scores"])[0] == "addition" and sum(meta["scores"].values()) <= 1.0 + 1e-6


def test_neighbours_outvote_descriptions_and_never_vote_for_themselves():
    q = "What is 17 plus 25? Add the two numbers."
    # Two close neighbours labelled 'percent' outvote the description; the item's own copy (labelled
    # 'triangles') is skipped, so it cannot copy its own label.
    examples = [(q, ("triangles",)), ("What is 18 plus 24? Add the two numbers.", ("percent",)),
                ("What is 16 plus 27? Add both numbers.", ("percent",))]
    out = label_items([item(0, q)], INV, LabelConfig(weight=1.0, neighbours=2), examples)
    assert out[0].skills == ("percent",)
    # descriptions alone say addition
    assert label_items([item(0, q)], INV, LabelConfig(weight=0.0), examples)[0].skills == ("addition",)


def test_neighbour_weight_is_fitted_on_the_examples():
    import numpy as np

    gold = np.array([[1.0, 0.0], [0.0, 1.0]])
    knn = np.array([[0.6, 0.4], [0.4, 0.6]])  # neighbours right, but not by much
    desc = np.array([[0.0, 1.0], [1.0, 0.0]])  # descriptions confidently wrong
    # skill 0 wins row 0 iff 0.6 w > 0.4 w + (1 - w), i.e. w > 5/6: the smallest such grid weight is 0.9
    assert fit_weight(knn, desc, gold) == 0.9
    assert fit_weight(desc, knn, gold) == 0.0  # the other way round: descriptions alone


def test_pick_keeps_further_skills_above_the_threshold():
    import numpy as np

    ids = ["a", "b", "c"]
    row = np.array([0.2, 0.5, 0.3])
    # best b (0.5); c needs 0.5 * 0.5 = 0.25 -> kept; a (0.2) is not
    assert pick(row, ids, LabelConfig(max_skills=3, min_score=0.5)).skills == ("b", "c")
    assert pick(row, ids, LabelConfig(max_skills=3, min_score=0.7)).skills == ("b",)
    assert pick(row, ids, LabelConfig(max_skills=1, min_score=0.0)).skills == ("b",)


def test_choose_skills_validates_against_the_inventory():
    parse = choose_skills(INV, 1, 2)
    assert parse('Sure! {"skills": ["addition"]}') == ("addition",)
    assert parse('```json\n{"skills": ["Percentages", "ADDITION"]}\n```') == ("percent", "addition")
    assert parse('{"skills": ["additon"]}') == ("addition",)  # a close misspelling resolves
    assert parse('{"skills": ["addition", "percent", "triangles"]}') == ("addition", "percent")  # capped at 2
    for bad, why in [('{"skills": ["calculus"]}', "not in the skill list"), ("addition", "no JSON object"),
                     ('{"skills": []}', "at least 1"), ('{"skill": "addition"}', "expected")]:
        with pytest.raises(Invalid, match=why):
            parse(bad)


def test_json_in_skips_braces_that_are_not_json():
    assert json_in('the set {1, 2} then {"a": 1}') == {"a": 1}


def test_labelled_examples_errors_name_file_and_line(tmp_path):
    f = tmp_path / "l.jsonl"
    f.write_text('{"question": "1+1", "skills": ["addition"]}\n{"question": "x", "skills": "addition"}\n')
    with pytest.raises(Exception, match=r"l.jsonl:2: field 'skills'"):
        labelled_examples(f)


def test_missing_skill_profile_counts_named_skills():
    ds = [Diagnosis("a", ("x", "y"), "", "ok"), Diagnosis("b", ("x",), "", "ok"), Diagnosis("c", (), "bad", "invalid")]
    assert missing_skill_profile(ds) == {"x": 2, "y": 1}
    it = Item(id="i", prompt="p", answer="1", skills=("x",))
    recs = [Record(it, "", Grade(1.0, "1", "")), Record(it, "", Grade(0.0, "2", "")),
            Record(it, "", Grade(None, None, "", "parse_error"))]
    assert [r.grade.score for r in wrong(recs)] == [0.0]  # an unparsable output is not a missing skill
    assert [(d.item_id, d.status, d.skills) for d in format_failures(recs)] == [("i", "format_failure", ())]


def test_diagnosis_hides_the_answer_key_unless_asked():
    it = Item(id="i", prompt="What is 6 x 7?", answer="4242", skills=("x",))
    rec = Record(it, "6 x 7 = 48. The answer is 48.", Grade(0.0, "48", ""))
    plain = diagnosis_chat(rec, "- x: times")[0]["content"]
    assert "What is 6 x 7?" in plain and "The answer is 48." in plain and "4242" not in plain  # as STAT, AdaptMI
    assert "Correct answer: 4242" in diagnosis_chat(rec, "- x: times", with_reference=True)[0]["content"]


def test_clustering_groups_names_by_meaning():
    names = ["adding_numbers", "addition_of_integers", "sum_of_two_numbers",
             "area_of_triangle", "triangle_angles", "triangle_geometry"]
    labels = cluster(names, n_clusters=2, distance=None)
    assert labels[0] == labels[1] == labels[2] and labels[3] == labels[4] == labels[5] and labels[0] != labels[3]


def test_discovery_parsers_reject_placeholders_and_junk():
    assert parse_names(2)('{"skills": ["Percentage Calculation", "unit conversion", "ratio"]}') == \
        ("percentage_calculation", "unit_conversion")
    for bad in ('{"skills": ["<skill_name>"]}', '{"skills": []}', '{"skills": ["!!"]}'):
        with pytest.raises(Invalid):
            parse_names(3)(bad)
    assert parse_cluster('{"id": "Unit Conversion", "name": "Unit conversion", "description": "d"}')["id"] == \
        "unit_conversion"
    with pytest.raises(Invalid, match="placeholder"):
        parse_cluster('{"id": "<snake_case_id>", "name": "<short name>", "description": "<one sentence>"}')


def test_judge_verdict_parser():
    assert parse_verdict('{"correct": true, "reason": "same value"}') == (True, "same value")
    with pytest.raises(Invalid):
        parse_verdict('{"correct": "yes"}')


def test_cache_is_content_addressed(tmp_path):
    cache = Cache(tmp_path / "t.db")
    chat = [{"role": "user", "content": "hi"}]
    k = call_key("openai:m@u", chat, 16, 0.0, 0, None)
    assert k == call_key("openai:m@u", [dict(chat[0])], 16, 0.0, 0, None)
    assert k != call_key("openai:m@u", chat, 16, 0.0, 0, {"type": "object"})  # a schema changes the call
    assert k != call_key("openai:other@u", chat, 16, 0.0, 0, None)
    cache.put("m", [(k, "hello", 1)])
    cache.close()
    assert Cache(tmp_path / "t.db").get([k, "nope"]) == {k: "hello"}


@pytest.mark.slow
def test_label_command_done_when(tmp_path, tiny_model_dir):
    """The issue's Done-when: 100 GSM8K test items labelled from the 14-skill inventory, then profiled."""
    data = shared_data()
    labels = data / "math-skill-labels" / "gsm8k_test.jsonl"
    run_cli("label", "--data", str(data / "gsm8k" / "test.jsonl"), "--format", "gsm8k", "--skills", str(labels),
            "--labeler", "embed", "--limit", "100", "--output-path", "l.jsonl", cwd=tmp_path)
    items = read_jsonl(tmp_path / "l.jsonl")
    inventory = set(load_inventory(labels).ids)
    assert len(inventory) == 14 and len(items) == 100
    assert all(len(it.skills) == 1 and it.skills[0] in inventory for it in items)
    assert items[0].answer == "18" and items[0].metadata["labels"]["labeler"] == "embed"
    assert load_inventory(tmp_path / "l.skills.yaml").ids == load_inventory(labels).ids
    # agreement with the released labels is far from perfect (see benchmarks/labeler_agreement.py) but must beat
    # the majority-class baseline: always answering the commonest label, of train or (an oracle) of these items
    gold = [json.loads(line)["skills"] for line in labels.read_text().split("\n")[:100]]
    train = [json.loads(line)["skills"] for line in (labels.parent / "gsm8k_train.jsonl").read_text().split("\n")
             if line]
    train_top = Counter(s for x in train for s in x).most_common(1)[0][0]
    majority = max(sum(train_top in g for g in gold), Counter(s for g in gold for s in g).most_common(1)[0][1])
    agree = sum(it.skills[0] in g for it, g in zip(items, gold))
    assert majority == 20 and agree > majority
    run_cli("profile", "--model", str(tiny_model_dir), "--data", "l.jsonl", "--limit", "5", "--max-new-tokens", "8",
            "--output-path", "p.json", "--runs-dir", "runs", cwd=tmp_path)
    prof = json.loads((tmp_path / "p.json").read_text())
    # --limit draws a sample balanced over skills: 5 items of 5 different skills, not the first 5 lines
    from skillgap.data import stratified_sample

    sample = stratified_sample(items, 5, seed=0)
    assert {s["id"] for s in prof["skills"]} == {s for it in sample for s in it.skills}
    assert len({it.skills[0] for it in sample}) == 5


def test_label_errors_are_actionable(tmp_path, cli):
    code, _, err = cli("label", "--data", "missing.jsonl", "--skills", "s.yaml", "--output-path", "o.jsonl")
    assert code == 2 and "missing.jsonl: no such file" in err
    (tmp_path / "d.jsonl").write_text('{"question": "1+1?", "answer": "2 #### 2"}\n')
    code, _, err = cli("label", "--data", "d.jsonl", "--skills", "s.yaml", "--labeler", "embd", "--output-path", "o.jsonl")
    assert code == 2 and "s.yaml: no such file" in err
    (tmp_path / "s.yaml").write_text("- id: addition\n  name: Addition\n")
    code, _, err = cli("label", "--data", "d.jsonl", "--skills", "s.yaml", "--labeler", "embd", "--output-path", "o.jsonl")
    assert code == 2 and "Did you mean 'embed'" in err
