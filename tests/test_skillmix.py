"""Skill-Mix (`skillgap.skillmix`, `skillgap skillmix`): draws, prompts, the judge's table, votes and aggregates
worked by hand, then the whole command against a real llama.cpp server as student and judge."""

import json
import math

import pytest

from skillgap.errors import ConfigError
from skillgap.skillmix import (MixGrade, MixTask, aggregate, answer_text, best_of, count_sentences, finalize,
                               generation_turns, grading_prompt, load_skills, load_topics, metrics, parse_points,
                               rubric, sample_tasks, vote)
from skillgap.teacher import Invalid

SKILLS = ["metaphor", "red herring", "modus ponens", "complex question (loaded question)"]


def _inventory(tmp_path):
    path = tmp_path / "skills.jsonl"
    path.write_text("".join(json.dumps({"skill": s, "definition": f"what {s} is.", "example": f"an example of {s}."})
                            + "\n" for s in SKILLS))
    topics = tmp_path / "topics.txt"
    topics.write_text("Sewing\nKnots\n\nBeekeeping\n")
    return path, topics


def test_draws_are_seeded_independent_and_take_k_distinct_skills():
    tasks = sample_tasks(SKILLS, ["Sewing", "Knots"], k=3, n=40, seed=0)
    assert len(tasks) == 40 and len({t.id for t in tasks}) == 40
    assert all(len(set(t.skills)) == 3 and set(t.skills) <= set(SKILLS) and t.topic in ("Sewing", "Knots")
               for t in tasks)
    assert tasks == sample_tasks(SKILLS, ["Sewing", "Knots"], 3, 40, seed=0) != sample_tasks(SKILLS, ["Sewing", "Knots"],
                                                                                           3, 40, seed=1)
    # the prompt order is shuffled too, not the inventory's
    assert any(list(t.skills) != [s for s in SKILLS if s in t.skills] for t in tasks)
    with pytest.raises(ConfigError, match="--k 5"):
        sample_tasks(SKILLS, ["Sewing"], 5, 1, 0)


def test_prompts_ask_for_k_minus_one_sentences_and_the_rubric_has_k_plus_3_points(tmp_path):
    skills, _ = _inventory(tmp_path)
    by_name = {s.name: s for s in load_skills(skills)}
    t3 = MixTask("x", 3, ("metaphor", "red herring", "modus ponens"), "Knots")
    first, second = generation_turns(t3, by_name)
    assert "in the context of Knots" in first and "**red herring**: what red herring is. For example," in first
    assert "only contains up to two sentences" in second and "'Answer:'" in second
    assert rubric(t3) == ["Correctly illustrates metaphor", "Correctly illustrates red herring",
                          "Correctly illustrates modus ponens", "Pertains to Knots", "Text makes sense",
                          "At most two sentences"]
    t1 = MixTask("y", 1, ("metaphor",), "Sewing")
    assert rubric(t1)[-1] == "At most one sentence" and "up to one sentence" in generation_turns(t1, by_name)[1]
    assert 'The student\'s answer was: "A knot is a promise."' in grading_prompt(t3, "A knot is a promise.", by_name)


def test_the_graded_text_is_the_last_answer_without_its_explanation():
    assert answer_text("Answer: first.\nExplanation: x\nAnswer: The knot held.\nExplanation: it is a metaphor") == \
        "The knot held."
    assert answer_text("no markers at all") == "no markers at all"


JUDGE_REPLY = """Here's the grading table:

| Criteria | Points Earned |
|----------|---------------|
| Correctly illustrates metaphor | 1 |
| Red herring | 0 |
| Pertains to Knots | 1 |
| Text makes sense | 1.0 |
| At most one sentence | 0 |
| Total Points Earned | 3 |

Explanation: the text is a metaphor but has no red herring."""


def test_the_judges_table_parses_in_rubric_order_and_a_broken_one_is_invalid():
    t = MixTask("x", 2, ("metaphor", "red herring"), "Knots")
    assert parse_points(JUDGE_REPLY, t) == [1, 0, 1, 1, 0]  # "Red herring" stands for its criterion
    with pytest.raises(Invalid, match="no row for the criterion 'Text makes sense'"):
        parse_points(JUDGE_REPLY.replace("| Text makes sense | 1.0 |\n", ""), t)
    with pytest.raises(Invalid, match="not 0 or 1"):
        parse_points(JUDGE_REPLY.replace("| Red herring | 0 |", "| Red herring | 2 |"), t)
    with pytest.raises(Invalid):
        parse_points("I think it is good. 5/5", t)


def test_sentences_are_counted_past_abbreviations_and_decimals():
    assert count_sentences("Dr. Smith sews 2.5 metres of silk. Then she ties it! Done?") == 3
    assert count_sentences("One knot, e.g. a bowline, holds") == 1
    assert count_sentences("") == 0


def test_votes_are_majorities_of_the_runs_that_parsed():
    assert vote([[1, 0, 1], [1, 1, 0], None, [0, 1, 1]]) == [1, 1, 1]  # 2 of the 3 parsed runs, per point
    assert vote([[1, 0], [0, 0]]) == [0, 0]  # a tie is not a majority
    assert vote([None, None]) is None


def test_the_sentence_point_is_counted_and_a_named_skill_can_be_filtered():
    t = MixTask("x", 2, ("metaphor", "complex question (loaded question)"), "Knots")
    text = "This knot is a metaphor for trust. Why do you keep lying about knots?"
    assert finalize([1, 1, 1, 1, 1], t, text, filter_names=False) == [1, 1, 1, 1, 0]  # 2 sentences > 1
    assert finalize([1, 1, 1, 1, 0], t, "A knot is trust, so why do you lie?", False) == [1, 1, 1, 1, 1]
    assert finalize([1, 1, 1, 1, 1], t, text, filter_names=True) == [0, 1, 1, 1, 0]  # "metaphor" is in the text
    assert finalize([1, 1, 1, 1, 1], t, "A complex question about knots?", True)[1] == 0  # name before "("


def test_the_three_aggregates_worked_by_hand():
    assert metrics([1, 1, 1, 1, 1], 2) == {"full_marks": 1.0, "all_skills": 1.0, "skill_fraction": 1.0}
    assert metrics([1, 1, 1, 0, 1], 2) == {"full_marks": 0.0, "all_skills": 1.0, "skill_fraction": 0.0}
    assert metrics([1, 0, 1, 1, 1], 2) == {"full_marks": 0.0, "all_skills": 0.0, "skill_fraction": 0.5}
    assert metrics([1, 1, 0, 1, 0, 1], 3) == {"full_marks": 0.0, "all_skills": 0.0, "skill_fraction": 0.0}


def _grade(points, k):
    return MixGrade(metrics(points, k)["skill_fraction"], "t", "e", "ok", tuple(points), metrics(points, k), 1)


def test_best_of_rounds_takes_each_metric_at_its_best_and_judge_errors_only_when_every_round_failed():
    err = MixGrade(None, "t", "no grading run parsed", "judge_error")
    a, b = _grade([1, 1, 1, 0, 1], 2), _grade([1, 0, 1, 1, 1], 2)  # all skills but not full; half the skills
    best = best_of([a, err, b])
    assert best.status == "ok" and best.metrics == {"full_marks": 0.0, "all_skills": 1.0, "skill_fraction": 0.5}
    assert best.points == (1, 0, 1, 1, 1) and best.runs_parsed == 2  # one real round's: b has a Skill Fraction
    assert best_of([err, err]).status == "judge_error"


def test_aggregates_count_every_draw_and_leave_judge_errors_out_of_the_rates():
    tasks = [MixTask(f"t{i}", 2, ("metaphor", "red herring"), "Knots") for i in range(4)]
    tasks.append(MixTask("t4", 1, ("metaphor",), "Sewing"))
    err = MixGrade(None, "t", "x", "judge_error")
    grades = [_grade([1, 1, 1, 1, 1], 2), _grade([1, 0, 1, 1, 1], 2), _grade([0, 0, 1, 1, 1], 2), err,
              _grade([1, 1, 1, 1], 1)]
    agg = aggregate(tasks, grades)
    k2 = next(r for r in agg["by_k"] if r["k"] == 2)
    assert (k2["n"], k2["graded"], k2["judge_errors"]) == (4, 3, 1)
    assert k2["full_marks"][0] == pytest.approx(1 / 3) and k2["skill_fraction"][0] == pytest.approx(0.5)
    assert 0 <= k2["full_marks"][1] < 1 / 3 < k2["full_marks"][2] <= 1  # Wilson
    assert k2["skill_fraction"][1] < 0.5 < k2["skill_fraction"][2]  # t interval over 3 texts
    k1 = next(r for r in agg["by_k"] if r["k"] == 1)
    assert k1["graded"] == 1 and k1["full_marks"][0] == 1.0
    assert math.isnan(k1["skill_fraction"][1]) or k1["skill_fraction"][0] == 1.0
    by_skill = {s["skill"]: s for s in agg["skills"]}
    assert (by_skill["metaphor"]["n"], by_skill["metaphor"]["earned"]) == (4, 3)
    assert (by_skill["red herring"]["n"], by_skill["red herring"]["earned"]) == (3, 1)


def test_inventories_load_from_jsonl_and_csv_and_bad_rows_name_file_line_and_field(tmp_path):
    skills, topics = _inventory(tmp_path)
    assert [s.name for s in load_skills(skills)] == SKILLS
    assert load_topics(topics) == ["Sewing", "Knots", "Beekeeping"]
    csv_path = tmp_path / "skills.csv"
    csv_path.write_text("category,skill,definition,example\nliterary,metaphor,a figure,All the world\n"
                        "rhetorical,red herring,a distraction,\n")
    with pytest.raises(ConfigError, match=r"skills.csv:3: field 'example'"):
        load_skills(csv_path)
    with pytest.raises(ConfigError, match="no such file"):
        load_skills(tmp_path / "missing.jsonl")


def test_the_released_skill_mix_lists_load():
    from conftest import shared_data

    root = shared_data() / "skill-mix"
    skills = load_skills(root / "skills.jsonl")
    assert len(skills) == 10 and {"metaphor", "red herring", "modus ponens"} <= {s.name for s in skills}
    assert len(load_topics(root / "topics.txt")) == 10


@pytest.mark.slow
def test_skillmix_command_against_a_real_server_accounts_for_every_draw_and_resumes(server, tmp_path):
    """The embedded 135M model is student and judge. Asked for JSON points (which llama.cpp enforces) it grades,
    so the whole path runs; asked for the reference's table it rarely writes one that parses, and every such
    draw is a judge error, counted and shown. This tests the plumbing, not the grades."""
    from conftest import run_cli

    from skillgap.store import RunStore

    skills, topics = _inventory(tmp_path)
    common = ("skillmix", "--model", "smollm2", "--base-url", server, "--judge", "smollm2", "--judge-base-url", server,
              "--skills", str(skills), "--topics", str(topics), "--max-new-tokens", "48", "--judge-retries", "0",
              "--cache", str(tmp_path / "cache.db"))
    args = (*common, "--k", "1,2", "--n", "3", "--rounds", "2", "--grading-runs", "3", "--judge-format", "json",
            "--judge-max-new-tokens", "48", "--output-path", "out/skillmix.json")
    first = run_cli(*args, cwd=tmp_path)
    res = json.loads((tmp_path / "out" / "skillmix.json").read_text())
    assert [r["k"] for r in res["by_k"]] == [1, 2]
    for r in res["by_k"]:
        assert r["n"] == 3 and r["graded"] + r["judge_errors"] == 3
    assert len(res["draws"]) == 6 and all(len(d["rounds"]) == 2 for d in res["draws"])
    graded = [d for d in res["draws"] if d["status"] == "ok"]
    assert graded, "no draw was graded under --judge-format json"
    for d in graded:
        assert len(d["points"]) == d["k"] + 3 and d["metrics"]["full_marks"] in (0.0, 1.0)
        assert tuple(d["points"]) in {tuple(rd["points"]) for rd in d["rounds"] if rd["points"]}  # a real round's
    texts = [rd["text"] for d in res["draws"] for rd in d["rounds"]]
    assert len(set(texts)) > 1  # sampled
    assert "judge errors" in first.stdout
    store = RunStore(tmp_path / "runs")
    run = store.get(res["run_id"])
    assert run["status"] == "done" and run["kind"] == "skillmix" and len(store.records(res["run_id"])) == 6
    store.close()
    page = (tmp_path / "out" / "skillmix.html").read_text()
    assert 'id="by-k"' in page and page.count('data-status="') == 6 and "<svg" in page

    again = run_cli(*args, cwd=tmp_path)  # every call cached: nothing is asked again
    assert "student calls made 0" in again.stdout and "judge calls made 0" in again.stdout
    assert json.loads((tmp_path / "out" / "skillmix.json").read_text())["by_k"] == res["by_k"]

    run_cli(*common, "--k", "1", "--n", "2", "--rounds", "1", "--grading-runs", "1", "--judge-max-new-tokens", "64",
            "--output-path", "out/table.json", cwd=tmp_path)
    table = json.loads((tmp_path / "out" / "table.json").read_text())
    assert table["run_id"] != res["run_id"]
    (k1,) = table["by_k"]
    assert k1["n"] == 2 and k1["graded"] + k1["judge_errors"] == 2
    for d in table["draws"]:
        assert (d["points"] is None) == (d["status"] == "judge_error")


@pytest.mark.slow
def test_repeated_draws_of_one_prompt_are_separate_texts_and_grades_on_a_real_server(server, tmp_path):
    """One skill and one topic make every k = 1 draw the same prompt (with the released 10 skills x 10 topics,
    about 37 of 100 draws repeat one). Each draw is still its own sampled text, graded on its own and counted:
    n = 3 texts, not one text counted three times."""
    from skillgap.models import ModelConfig
    from skillgap.recipes.skillmix import SkillMixConfig, skillmix
    from skillgap.store import RunStore
    from skillgap.teacher import Cache

    skills, topics = tmp_path / "one.jsonl", tmp_path / "one.txt"
    skills.write_text(json.dumps({"skill": "metaphor", "definition": "a figure of speech.",
                                  "example": "time is a thief."}) + "\n")
    topics.write_text("Knots\n")
    cfg = SkillMixConfig(str(skills), str(topics), k=(1,), n=3, rounds=1, grading_runs=1, max_new_tokens=32,
                         judge_max_new_tokens=24, judge_retries=0, judge_format="json")
    model = ModelConfig(model="smollm2", base_url=server)
    res = skillmix(model, model, cfg, tmp_path / "out.json", tmp_path / "runs", Cache(tmp_path / "cache.db"))
    draws = res["draws"]
    assert len(draws) == 3 and len({(*d["skills"], d["topic"]) for d in draws}) == 1  # one prompt, three draws
    assert len({d["rounds"][0]["text"] for d in draws}) == 3  # three sampled texts
    assert len(Cache(tmp_path / "cache.db")) == 9  # each draw's two turns and its grade: an entry each
    (k1,) = res["by_k"]
    assert k1["n"] == 3 and k1["graded"] + k1["judge_errors"] == 3
    store = RunStore(tmp_path / "runs")
    assert len(store.records(res["run_id"])) == 3
    store.close()


@pytest.mark.parametrize("change, message", [
    ({"skills": "nowhere.jsonl"}, "nowhere.jsonl: no such file"),
    ({"skills": "bad.jsonl"}, r"bad.jsonl:2: field 'definition'"),
    ({"k": (1, 9)}, "--k 9"),
    ({"rounds": 3, "temperature": 0.0}, "would repeat one greedy text"),
    ({"judge_format": "jsn"}, "Did you mean 'json'"),
    ({"n": 0}, "--n must be at least 1"),
])
def test_bad_options_fail_before_any_model_is_called(tmp_path, monkeypatch, change, message):
    import dataclasses

    import skillgap.models
    from skillgap.errors import SkillgapError
    from skillgap.models import ModelConfig
    from skillgap.recipes.skillmix import SkillMixConfig, skillmix

    def touched(*a, **k):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(skillgap.models, "load_model", touched)
    monkeypatch.setattr("skillgap.teacher.load_model", touched)
    skills, topics = _inventory(tmp_path)
    (tmp_path / "bad.jsonl").write_text(skills.read_text().splitlines()[0] + "\n"
                                        + json.dumps({"skill": "irony", "example": "x"}) + "\n")
    cfg = SkillMixConfig(str(skills), str(topics), k=(1, 2), n=2)
    change = {k: str(tmp_path / v) if k == "skills" else v for k, v in change.items()}
    with pytest.raises(SkillgapError, match=message):
        skillmix(ModelConfig("smollm2-135m"), ModelConfig("smollm2-135m"), dataclasses.replace(cfg, **change),
                 tmp_path / "out.json", tmp_path / "runs")
    assert not (tmp_path / "out.json").exists()


def test_the_skillmix_page_in_headless_chromium(tmp_path):
    """The page a user opens: the aggregates by k (plot and table), judge errors shown, nothing fetched."""
    import re

    from test_report import _chromium, _page_requests, _run_chromium

    from skillgap.report import render_skillmix

    tasks = [MixTask(f"t{i}", 2, ("metaphor", "red herring"), "Knots") for i in range(3)]
    tasks.append(MixTask("t3", 1, ("metaphor",), "Sewing"))
    grades = [_grade([1, 1, 1, 1, 1], 2), _grade([1, 0, 1, 1, 1], 2), MixGrade(None, "<b>x</b>", "e", "judge_error"),
              _grade([1, 1, 1, 1], 1)]
    result = {"run_id": "skillmix-abc", "student": "hf:student", "judge": "openai:judge", "n_skills": 2,
              "n_topics": 2, "config": {"rounds": 3, "grading_runs": 3, "seed": 0}} | aggregate(tasks, grades)
    result["draws"] = [{"id": t.id, "k": t.k, "skills": list(t.skills), "topic": t.topic, "status": g.status,
                        "points": list(g.points) if g.points else None, "text": g.answer} for t, g in zip(tasks, grades)]
    page = tmp_path / "skillmix.html"
    page.write_text(render_skillmix(result))
    home = tmp_path / "home"
    home.mkdir()
    dom = _run_chromium(_chromium(), home, f"--log-net-log={tmp_path / 'net.json'}", "--dump-dom",
                        page.as_uri()).stdout
    assert all(f'id="{s}"' in dom for s in ("by-k", "skills", "draws")) and "<svg" in dom
    k2 = re.search(r'<tr data-k="2">(.*?)</tr>', dom, re.S).group(1)
    assert re.findall(r"<td>(\d+)</td>", k2)[:4] == ["2", "3", "2", "1"]  # k, draws, graded, judge errors
    assert dom.count('data-status="judge_error"') == 1 and "&lt;b&gt;x&lt;/b&gt;" in dom  # escaped
    assert _page_requests(tmp_path / "net.json") == set()
