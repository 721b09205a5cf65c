"""Where items come from (`skillgap.data`): suites restricted by skill, files sampled to a limit."""

from collections import Counter

import pytest

from skillgap.data import DataConfig, load_items, read_train_file, stratified_sample
from skillgap.errors import ConfigError
from skillgap.items import Item, write_jsonl
from skillgap.suites import active_skills, load_suite

G = ("sub_borrow", "div_remainder", "percent")


def test_excluded_skills_appear_in_no_item_and_the_k_pattern_holds():
    suite = load_suite("arith", exclude=G)
    for split, n in (("train", 3000), ("test", 400), ("validation", 200)):
        items = suite.generate(split, n, seed=0)
        assert len(items) == n and not [it for it in items if set(it.skills) & set(G)]
        assert all(s["skill"] not in G for it in items for s in it.metadata["steps"])  # every step, not the labels
        ks = Counter(it.k for it in items)
        assert ks == Counter({1: 0.4 * n, 2: 0.3 * n, 3: 0.2 * n, 4: 0.1 * n})  # as the whole suite's
        assert {s for it in items for s in it.skills} == set(load_suite("arith").skills.ids) - set(G)
    # the same problems keep their split: a restricted test item is a test problem of the whole suite
    assert all(it.split == "test" for it in suite.generate("test", 100, seed=1))
    assert active_skills(suite).ids == [s for s in load_suite("arith").skills.ids if s not in G]
    # ids say the restriction, so a restricted item never shares an id with a different whole-suite item
    whole = {it.id: it for it in load_suite("arith").generate("train", 50, seed=0)}
    assert not {it.id for it in suite.generate("train", 50, seed=0)} & set(whole)


def test_only_these_skills_and_chains_among_them():
    keep = ("add_1digit", "mul_facts", "compare")
    items = load_suite("arith", skills=keep).generate("train", 200, seed=0)
    assert {s for it in items for s in it.skills} == set(keep)
    assert max(it.k for it in items) == 3  # three skills make at most a chain of three
    # a skill that can only close a story makes single items alone
    assert {it.k for it in load_suite("arith", skills=["place_value"]).generate("train", 20)} == {1}


def test_synthesize_and_validation_stay_inside_the_restriction():
    suite = load_suite("arith", exclude=G)
    syn = suite.synthesize("fraction_of", 60, seed=0)
    assert all("fraction_of" in it.skills and not set(it.skills) & set(G) for it in syn)
    with pytest.raises(ValueError, match="left out"):
        suite.synthesize("percent", 3)
    lego = load_suite("lego", skills=["depth_0", "depth_3"])
    assert [it.skills[0] for it in lego.generate("test", 6)] == ["depth_0", "depth_3"] * 3
    with pytest.raises(ValueError, match="left out"):
        lego.synthesize("depth_1", 2)


def test_unknown_or_empty_restrictions_are_refused():
    with pytest.raises(ConfigError, match="Did you mean 'percent'"):
        load_suite("arith", exclude=["percnt"])
    with pytest.raises(ConfigError, match="no skill"):
        load_suite("addition", exclude=["digit_0", "digit_1", "digit_2"])
    with pytest.raises(ConfigError, match="both name percent"):
        DataConfig(skills=("percent",), exclude_skills=("percent",)).check()


def test_restriction_is_part_of_what_the_data_is():
    whole, cut = DataConfig(), DataConfig(exclude_skills=G)
    assert whole.describe() == "suite:arith/test"
    assert cut.describe() == "suite:arith/test?exclude=sub_borrow,div_remainder,percent"
    items, skills, _ = load_items(cut)
    assert len(items) == 200 and "percent" not in skills and len(skills) == 10


def _file(tmp_path):
    # sorted by category, as many public files are: 30 of a, 30 of b, 5 of c, then 5 composed a+c
    rows = [Item(f"{s}{i}", str(i), (s,), f"{s} {i}?") for s, n in (("a", 30), ("b", 30), ("c", 5)) for i in range(n)]
    rows += [Item(f"ac{i}", str(i), ("a", "c"), f"a and c {i}?") for i in range(5)]
    write_jsonl(rows, tmp_path / "sorted.jsonl")
    return tmp_path / "sorted.jsonl", rows


def test_stratified_sample_worked_by_hand(tmp_path):
    path, rows = _file(tmp_path)
    # 12 draws over 3 skills: each gets 4 or 5 (an a+c item counts for both), though c has 10 items of 70 and
    # the first 12 lines are all 'a'
    got = stratified_sample(rows, 12, seed=0)
    assert len(got) == len(set(got)) == 12
    cover = Counter(s for it in got for s in it.skills)
    assert set(cover) == {"a", "b", "c"} and min(cover.values()) >= 4 and max(cover.values()) <= 5
    assert got == sorted(got, key=rows.index)  # the file's order
    assert got == stratified_sample(rows, 12, seed=0) != stratified_sample(rows, 12, seed=1)
    assert stratified_sample(rows, 500, seed=0) == rows

    first, _, _ = load_items(DataConfig(suite=None, data=str(path), limit=12, sample="first"))
    assert [it.id for it in first] == [f"a{i}" for i in range(12)]
    drawn, _, _ = load_items(DataConfig(suite=None, data=str(path), limit=12))
    assert drawn == got
    assert DataConfig(suite=None, data=str(path), limit=12).describe().endswith("?sample=stratified")
    # a ready training file (`train --data F --limit N`) is drawn the same way
    assert read_train_file(DataConfig(suite=None, data=str(path), limit=12)) == got
    assert [it.id for it in read_train_file(DataConfig(suite=None, data=str(path), limit=12, sample="first"))] == \
        [f"a{i}" for i in range(12)]
    assert DataConfig(suite=None, data=str(path), limit=None).describe() == f"file:{path.resolve()}"


def test_a_file_restricted_by_its_labels(tmp_path):
    path, _ = _file(tmp_path)
    no_c, _, _ = load_items(DataConfig(suite=None, data=str(path), exclude_skills=("c",)))
    assert len(no_c) == 60 and not [it for it in no_c if "c" in it.skills]
    only_ac, _, _ = load_items(DataConfig(suite=None, data=str(path), skills=("a", "c")))
    assert {it.skills for it in only_ac} == {("a",), ("c",), ("a", "c")}
    with pytest.raises(ConfigError, match="no item is left"):
        load_items(DataConfig(suite=None, data=str(path), skills=("z",)))
    assert read_train_file(DataConfig(suite=None, data=str(path), exclude_skills=("c",))) == no_c
    with pytest.raises(ConfigError, match="no item is left"):
        read_train_file(DataConfig(suite=None, data=str(path), skills=("z",)))


@pytest.mark.slow
def test_train_data_in_any_format_and_restricted(tmp_path):
    """`--train-data` reads a table through `--train-format`/`--train-field`, as `--data` does, and the suite's
    `--exclude-skills` holds for that pool too."""
    import csv
    import json

    from conftest import run_cli

    pool = load_suite("arith").generate("train", 60, seed=0)
    with open(tmp_path / "pool.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "gold", "tags", "worked", "split"])
        w.writerows([it.prompt, it.answer, ";".join(it.skills), it.completion, "train"] for it in pool)
    run_cli("train", "--model", "scratch-tiny", "--backend", "hf", "--device", "cpu", "--suite", "arith",
            "--exclude-skills", "percent", "--strategy", "uniform", "--budget", "16", "--train-data", "pool.csv",
            "--train-format", "table", "--train-field", "prompt=question", "--train-field", "answer=gold",
            "--train-field", "skills=tags", "--train-field", "completion=worked", "--steps", "1",
            "--output-path", "out", cwd=tmp_path)
    trained = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    by_text = {it.prompt: it for it in pool}
    assert len(trained) == 16 and all(r["prompt"] in by_text for r in trained)
    assert all(r["completion"] == by_text[r["prompt"]].completion for r in trained)
    assert not [r for r in trained if "percent" in r["skills"]] and any("percent" in it.skills for it in pool)


def test_compositions_restricted_by_k_and_held_out_pairs():
    """`--k 1,2` keeps the pattern's items of those k only; `--hold-out-pairs` leaves those combinations out of
    every item, generated or synthesized, while each problem keeps its split."""
    pairs = (("add_multi", "mul_1digit"), ("percent", "fraction_of"))
    suite = load_suite("arith", k_values=(1, 2), hold_out_pairs=pairs)
    items = suite.generate("train", 2000, seed=0)
    # the pattern's k = 1, 2 slots, in order: 1,1,2,1,2,1,2 (4:3), so 2000 = 285 x 7 + (1,1,2,1,2)
    assert Counter(it.k for it in items) == {1: 285 * 4 + 3, 2: 285 * 3 + 2}
    combos = Counter(frozenset(it.skills) for it in items if it.k == 2)
    for a, b in pairs:
        assert not [it for it in items if {a, b} <= set(it.skills)]
        assert any(a in c for c in combos) and any(b in c for c in combos)  # each skill still composes
    full = load_suite("arith").generate("train", 3000, seed=0)
    assert any({"add_multi", "mul_1digit"} <= set(it.skills) for it in full)  # the pair is common otherwise
    assert all(it.id.startswith("arith-train-s0-k12-hp.add_multi+mul_1digit.fraction_of+percent-") for it in items)
    syn = suite.synthesize("percent", 60, seed=0)
    assert all(it.k <= 2 and not {"percent", "fraction_of"} <= set(it.skills) for it in syn)
    only3 = load_suite("arith", k_values=(3,)).generate("test", 50, seed=0)
    assert {it.k for it in only3} == {3} and all(it.split == "test" for it in only3)
    cfg = DataConfig(suite="arith", k_values=(1, 2), hold_out_pairs=pairs)
    assert cfg.describe() == ("suite:arith/test?k=1,2&hold_out=add_multi+mul_1digit,percent+fraction_of")
    with pytest.raises(ConfigError, match="Did you mean 'percent'"):
        load_suite("arith", hold_out_pairs=(("percnt", "round"),))
    with pytest.raises(ConfigError, match="composes 1 to 4"):
        load_suite("arith", k_values=(5,))
    with pytest.raises(ConfigError, match="does not compose skills"):
        load_suite("lego", k_values=(1,))


def test_a_file_restricted_by_k_and_pairs(tmp_path):
    path, _ = _file(tmp_path)
    two = read_train_file(DataConfig(suite=None, data=str(path), k_values=(2,)))
    assert {it.id for it in two} == {f"ac{i}" for i in range(5)}
    no_ac = read_train_file(DataConfig(suite=None, data=str(path), hold_out_pairs=(("a", "c"),)))
    assert len(no_ac) == 65 and not [it for it in no_ac if {"a", "c"} <= set(it.skills)]


def test_validation_items_of_a_composition_restricted_suite_are_the_whole_suites():
    """`--k 1` leaves too few distinct single-skill validation problems for some skills (9 x 9 facts), so the
    per-skill validation items, which measure and never train, come from the suite without that restriction."""
    from skillgap.suites import validation_items

    only1 = load_suite("arith", k_values=(1,))
    with pytest.raises(ConfigError, match="has only .* distinct new validation items for mul_facts"):
        only1.synthesize("mul_facts", 8, seed=20_000, split="validation")
    val = validation_items(only1, "mul_facts", 8, seed=0)
    assert val == validation_items(load_suite("arith"), "mul_facts", 8, seed=0)
