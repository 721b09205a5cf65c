"""Instruct-SkillMix (`--strategy skillmix`): the parts worked by hand, the released data as a pool, and a real
llama.cpp server as the teacher that writes a training set which then trains."""

import json

import pytest

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.skills import SkillSet
from skillgap.target import Request, build_mixture
from skillgap.target.skillmix import (
    QUERY_TYPES,
    load_query_types,
    parse_example,
    skill_pool,
)


def test_the_last_instruction_response_pair_is_the_example():
    reply = ("Sure! Here is a draft.\n### Instruction: A?\n### Response: B.\nRefined:\n"
             "### Instruction: How do I split a 7 m rope into 3 equal parts?\n### Response: 7 / 3 = 2.33 m each.\n")
    assert parse_example(reply) == ("How do I split a 7 m rope into 3 equal parts?", "7 / 3 = 2.33 m each.")
    assert parse_example("**Instruction**: Q\n**Response**: R") == ("Q", "R")
    assert parse_example("Instruction: a question, and no response") is None
    assert parse_example("### Instruction:\n### Response: an answer to nothing") is None


def test_query_types_from_the_released_markdown_and_from_plain_lines(tmp_path):
    from conftest import shared_data

    md = load_query_types(shared_data() / "instruct-skillmix" / "query_types_gpt-4-turbo-2024-04-09.md")
    names = [n for n, _ in md]
    assert len(md) == 16 and names[:3] == ["Information-Seeking", "Help-Seeking", "Instructional"]
    assert md[0][1].startswith("This includes any query where the user is looking to find out facts")
    plain = tmp_path / "q.txt"
    plain.write_text("Planning: the person wants a plan\nDebate\n")
    assert load_query_types(plain) == (("Planning", "the person wants a plan"), ("Debate", "Debate"))
    assert {n for n, _ in QUERY_TYPES} <= set(names)  # the built-in names are the paper's


def test_skills_are_drawn_from_the_missing_ones_else_the_inventory_else_the_pool():
    pool = [Item("a", "", ("x", "y"), "p"), Item("b", "", ("z",), "q")]
    inv = SkillSet.from_dicts([{"id": "s1"}, {"id": "s2"}, {"id": "s3"}])
    assert skill_pool(Request({"s2": 3, "s3": 0, "s1": 1}, pool, 4, skills=inv)) == ["s1", "s2"]
    assert skill_pool(Request({}, pool, 4, skills=inv)) == ["s1", "s2", "s3"]
    assert skill_pool(Request({}, pool, 4)) == ["x", "y", "z"]
    with pytest.raises(ConfigError, match="needs|teacher"):
        build_mixture("skillmix", Request({}, pool, 4))
    with pytest.raises(ConfigError, match="draws 3 skills at a time, but only 2"):
        build_mixture("skillmix", Request({"s1": 1, "s2": 1}, pool, 4, teacher=object.__new__(_Named),
                                          skillmix_k=3))


class _Named:
    """Only to reach the size check (it comes before any call); never asked anything."""
    identity, calls, hits, max_new_tokens = "none", 0, 0, 1

    def complete(self, *a, **k):
        raise AssertionError("asked")


def test_the_released_instruct_skillmix_data_loads_as_a_pool_with_its_skills():
    from conftest import shared_data

    from skillgap.formats import read_items

    items, grader = read_items(shared_data() / "instruct-skillmix" / "ism_sda_k2_1000.jsonl")
    assert len(items) == 1000 and grader == "judge"
    assert all(len(it.skills) == 2 and it.completion and it.prompt and it.split == "train" for it in items)
    assert items[0].skills == ("patina_application", "historical_linguistics_research")
    assert items[0].metadata["query_type"] == "Interpretative"


@pytest.mark.slow
def test_a_teacher_on_a_real_server_writes_a_skillmix_set_that_trains(server, tmp_path):
    """The 135M teacher follows the format now and then (mostly in its first draft): the notes account for every
    draw, the kept examples carry their provenance, and `train` trains on them."""
    from conftest import run_cli, shared_data

    rows = [json.loads(line) for line in
            (shared_data() / "instruct-skillmix" / "ism_sda_k2_1000.jsonl").read_text().splitlines()[:40]]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ("train", "--model", "smollm2-135m", "--backend", "hf", "--device", "cpu", "--train-data", "pool.jsonl",
            "--strategy", "skillmix", "--budget", "3", "--teacher", "smollm2", "--teacher-base-url", server,
            "--teacher-max-new-tokens", "128", "--teacher-cache", "t.db", "--steps", "1", "--train-batch-size", "2",
            "--output-path", "out")
    run_cli(*args, cwd=tmp_path)
    mixture = json.loads((tmp_path / "out" / "mixture.json").read_text())
    notes = mixture["notes"]
    c = notes["counts"]
    assert c["asked"] == c["kept"] + c["unparsable"] + c["duplicates"] and c["kept"] == mixture["n_examples"]
    assert c["kept"] == c["kept_refined"] + c["kept_draft"]
    assert 1 <= c["kept"] <= 3 and notes["shortfall"] == 3 - c["kept"] and notes["k"] == 2
    pool_skills = {s for r in rows for s in r["skills"]}
    assert set(notes["skills_drawn_from"]) == pool_skills  # no profile: the pool's whole inventory
    trained = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    for r in trained:
        assert len(r["skills"]) == 2 and set(r["skills"]) <= pool_skills and r["completion"] and r["prompt"]
        assert r["metadata"]["query_type"] in {q for q, _ in QUERY_TYPES} and r["metadata"]["stage"] in ("refined",
                                                                                                          "draft")
        assert r["metadata"]["generator"] == notes["teacher"] and r["prompt"] not in {x["instruction"] for x in rows}
    assert len({r["prompt"] for r in trained}) == len(trained)  # duplicates dropped
    result = json.loads((tmp_path / "out" / "train_result.json").read_text())
    assert result["steps"] == 1


@pytest.mark.slow
def test_repeated_draws_are_separate_samples_on_a_real_server(server, tmp_path):
    """One skill and one query type make every draw the same conversation. Each draw is sampled on its own (its
    own replies and cache entries), so a repeat is not the first draw's reply again, dropped as a "duplicate"."""
    from skillgap.models import ModelConfig
    from skillgap.target.skillmix import skillmix
    from skillgap.teacher import Cache, Teacher

    cache = Cache(tmp_path / "t.db")
    teacher = Teacher(ModelConfig(model="smollm2", base_url=server), cache, max_new_tokens=48)
    req = Request({"unit_conversion": 1}, [], 3, teacher=teacher, skillmix_k=1,
                  query_types=(("Planning", "the person wants a plan"),))
    mixture = skillmix(req, max_rounds=1)
    c = mixture.notes["counts"]
    assert c["asked"] == 3 == c["kept"] + c["unparsable"] + c["duplicates"]
    assert len(cache) == teacher.calls == 9  # 3 draws x 3 turns, one entry each
    assert len({text for (text,) in cache.db.execute("SELECT text FROM replies")}) == 9  # nine sampled replies
    assert len({it.prompt for it in mixture.items}) == len(mixture.items) == c["kept"]


def test_options_are_checked_before_anything_runs(tmp_path):
    from skillgap.recipes.train import TargetConfig

    with pytest.raises(ConfigError, match="needs|teacher write every example"):
        TargetConfig(strategy="skillmix").check(None)
    with pytest.raises(ConfigError, match="--skillmix-k must be at least 1"):
        TargetConfig(strategy="skillmix", skillmix_k=0).check(object())
    with pytest.raises(ConfigError, match="nowhere.md: no such file"):
        TargetConfig(strategy="skillmix", query_types=str(tmp_path / "nowhere.md")).check(object())
    with pytest.raises(ConfigError, match="Did you mean 'skillmix'"):
        TargetConfig(strategy="skilmix").check(None)
