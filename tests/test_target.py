"""Targeting strategies, each checked on a small case worked by hand."""

from collections import Counter

import pytest

from skillgap.errors import ConfigError
from skillgap.items import Item
from skillgap.skills import Skill, SkillSet
from skillgap.suites import load_suite
from skillgap.target import Request, build_mixture, quotas
from skillgap.target.curriculum import depths
from skillgap.target.stat_sel import stat_sel

SKILLS = SkillSet((Skill("a", "A", "base"), Skill("b", "B", "needs a", prerequisites=("a",)),
                   Skill("c", "C", "needs b", prerequisites=("b",))))


def _pool() -> list[Item]:
    """10 items labelled a, 10 labelled b, 10 labelled c, 5 labelled (a, c)."""
    labels = [("a",)] * 10 + [("b",)] * 10 + [("c",)] * 10 + [("a", "c")] * 5
    return [Item(f"p{i}", "1", s, prompt=f"q{i}", split="train") for i, s in enumerate(labels)]


def test_quotas_largest_remainder():
    assert quotas({"a": 3, "b": 1}, 8) == {"a": 6, "b": 2}
    assert quotas({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}  # 3.33 each, one extra to the first
    assert sum(quotas({"x": 7, "y": 2, "z": 5}, 100).values()) == 100


def test_stat_sel_shares_follow_the_missing_skill_profile():
    # Missing-Skill-Profile: 3 pairs for b, 1 for c -> 4 pairs; budget 8 -> 2 items per pair:
    # 6 items labelled b, 2 labelled c, nothing for a (not missing).
    pool = [it for it in _pool() if it.skills != ("a", "c")]
    m = stat_sel(Request({"b": 3, "c": 1}, pool, budget=8, seed=0))
    assert m.notes["pairs"] == 4 and m.notes["per_pair"] == 2
    assert Counter(s for it in m.items for s in it.skills) == {"b": 6, "c": 2}
    assert len({it.id for it in m.items}) == 8  # distinct while the pool lasts


def test_stat_sel_subsamples_to_the_budget():
    m = stat_sel(Request({"b": 3, "c": 1}, _pool(), budget=8, seed=0), per_pair=5)  # the paper's 5 per pair
    assert m.notes["selected"] == 20 and len(m.items) == 8
    assert all(set(it.skills) & {"b", "c"} for it in m.items)


def test_stat_sel_fills_the_budget_when_a_missing_skill_has_no_pool_items():
    # Missing: a 4 pairs (no pool item carries a), b 3, c 1. a's share goes to b and c in proportion: 4 pairs,
    # budget 16 -> 4 items per pair: 12 of b, 4 of c. Before, a kept its 8 of 16 slots and the set had 8 items.
    pool = [it for it in _pool() if "a" not in it.skills]
    m = build_mixture("stat-sel", Request({"a": 4, "b": 3, "c": 1}, pool, budget=16, seed=0))
    assert len(m.items) == 16 and Counter(s for it in m.items for s in it.skills) == {"b": 12, "c": 4}
    assert m.notes["skills_without_items"] == {"a": 4} and m.notes["pairs"] == 4 and m.notes["per_pair"] == 4
    assert "no pool item is labelled a (4 failed)" in m.notes["warning"]
    assert "warning" not in build_mixture("stat-sel", Request({"b": 3, "c": 1}, pool, budget=16)).notes
    with pytest.raises(ConfigError, match=r"no pool item is labelled with any missing skill \(a\).*--train-data"):
        build_mixture("stat-sel", Request({"a": 4}, pool, budget=16))


def test_uniform_ignores_the_profile_and_is_deterministic():
    a = build_mixture("uniform", Request({"b": 5}, _pool(), budget=20, seed=1))
    b = build_mixture("uniform", Request({}, _pool(), budget=20, seed=1))
    assert [it.id for it in a.items] == [it.id for it in b.items] and len(a.items) == 20
    assert len({it.id for it in a.items}) == 20
    assert [it.id for it in build_mixture("uniform", Request({}, _pool(), 20, seed=2)).items] != \
        [it.id for it in a.items]


def test_curriculum_trains_prerequisites_first():
    assert depths(SKILLS) == {"a": 0, "b": 1, "c": 2}
    m = build_mixture("curriculum", Request({"a": 1, "b": 1, "c": 1}, _pool(), budget=12, seed=0, skills=SKILLS))
    levels = [max(depths(SKILLS)[s] for s in it.skills) for it in m.items]
    assert levels == sorted(levels) and m.order == "curriculum"
    # The same items as STAT-Sel, only reordered.
    sel = stat_sel(Request({"a": 1, "b": 1, "c": 1}, _pool(), budget=12, seed=0))
    assert sorted(it.id for it in m.items) == sorted(it.id for it in sel.items)


def test_stat_syn_from_the_suite_generator():
    suite = load_suite("arith")
    m = build_mixture("stat-syn", Request({"add_multi": 3, "round": 1}, [], budget=40, seed=0,
                                          skills=suite.skills, suite=suite))
    made_for = Counter(it.id.split("-")[2] for it in m.items)  # arith-syn-<skill>-...
    assert made_for == {"add_multi": 30, "round": 10}
    assert all(("add_multi" if made_for_id.startswith("arith-syn-add_multi") else "round") in it.skills
               for made_for_id, it in ((it.id, it) for it in m.items))
    assert all(it.split == "train" and it.completion for it in m.items)


def test_errors_are_actionable():
    with pytest.raises(ConfigError, match="Did you mean 'stat-sel'"):
        build_mixture("stat_sel", Request({"a": 1}, _pool(), 4))
    with pytest.raises(ConfigError, match="no missing skills"):
        build_mixture("stat-sel", Request({}, _pool(), 4))
    with pytest.raises(ConfigError, match="teacher"):
        build_mixture("stat-syn", Request({"a": 1}, _pool(), 4))


def test_a_small_pool_is_cycled_with_unique_ids(tmp_path):
    from skillgap.items import read_jsonl, write_jsonl

    m = build_mixture("uniform", Request({}, _pool()[:5], budget=12, seed=0))
    assert len(m.items) == 12 and len({it.id for it in m.items}) == 12
    assert len(read_jsonl(write_jsonl(m.items, tmp_path / "train.jsonl"))) == 12  # a valid training file


def test_replay_spreads_a_uniform_share_through_the_order():
    # budget 8 at replay 0.25: stat-sel picks 6 items of the missing b, uniform replay 2 more, at the slots
    # int((i + 0.5) * 8 / 2) = 2 and 6, so each half of the order (a checkpoint at 4 examples) holds one
    pool = [it for it in _pool() if it.skills != ("a", "c")]
    m = build_mixture("stat-sel", Request({"b": 1}, pool, budget=8, seed=0, replay=0.25))
    assert len(m.items) == 8 and m.notes["replay"] == {"share": 0.25, "examples": 2, "targeted": 6}
    alone = build_mixture("stat-sel", Request({"b": 1}, pool, budget=6, seed=0))
    targeted = [it.id for i, it in enumerate(m.items) if i not in (2, 6)]
    assert targeted == [it.id for it in alone.items]  # the strategy's own order, untouched
    replayed = [m.items[2], m.items[6]]
    assert not {it.id for it in replayed} & set(targeted)  # drawn from what the strategy left
    # a curriculum keeps its order around the replayed items
    c = build_mixture("curriculum", Request({"a": 1, "b": 1, "c": 1}, _pool(), budget=12, seed=0, skills=SKILLS,
                                            replay=0.25))
    kept = [it for i, it in enumerate(c.items) if i not in {int((j + 0.5) * 4) for j in range(3)}]
    levels = [max(depths(SKILLS)[s] for s in it.skills) for it in kept]
    assert len(kept) == 9 and levels == sorted(levels)
    # uniform is all replay already; a share outside [0, 1) is refused
    assert "replay" not in build_mixture("uniform", Request({}, pool, budget=8, seed=0, replay=0.5)).notes
    with pytest.raises(ConfigError, match="--replay"):
        build_mixture("stat-sel", Request({"b": 1}, pool, budget=8, replay=1.0))


def test_replay_policy_mixes_in_the_natural_proportions():
    from skillgap.target.online import make_policy

    # a policy that starves b; 20% of every draw goes to the natural 1:3 proportions of a and b:
    # a = 0.8 * 1 + 0.2 * 0.25 = 0.85, b = 0.8 * 0 + 0.2 * 0.75 = 0.15
    from skillgap.graph import parse_rows

    p = make_policy("curriculum", ["a", "b"], parse_rows("10/01", ["a", "b"]), [1.0, 3.0], every=2, replay=0.2)
    assert p.weights() == pytest.approx({"a": 0.85, "b": 0.15})
    p.update({"a": 1.0, "b": 1.0})
    p.update({"a": 1.0, "b": 1.0})  # the curriculum admits b: 1/2 each, mixed
    assert p.weights() == pytest.approx({"a": 0.8 * 0.5 + 0.05, "b": 0.8 * 0.5 + 0.15})


def test_stat_sel_on_a_joint_diagnosis_splits_by_shortfall_and_prefers_the_gap_alone():
    """Gaps b (shortfall 0.3) and c (0.1) share 8 examples 6 : 2. Of c's items, (a, c) ones have c as their only
    obstacle when a is mastered and come first within their k; the pool's k mix of c's items (10 alone, 5 with a:
    2 : 1) is kept, so 2 examples of c split 1 : 1."""
    pool = _pool()
    m = stat_sel(Request({"b": 0.3, "c": 0.1}, pool, budget=8, seed=0, mastered=frozenset({"a"})))
    assert m.notes["allotment"] == {"b": 6, "c": 2}
    assert Counter(it.skills for it in m.items) == {("b",): 6, ("c",): 1, ("a", "c"): 1}
    # nothing mastered: (a, c) items are not clean, yet the k mix keeps one of them
    m = stat_sel(Request({"b": 0.3, "c": 0.1}, pool, budget=8, seed=0, mastered=frozenset()))
    assert Counter(it.skills for it in m.items) == {("b",): 6, ("c",): 1, ("a", "c"): 1}
    assert m.notes["only_obstacle"] == {"b": 6, "c": 1}


def test_a_thin_diagnosis_falls_back_to_uniform_and_says_why():
    from skillgap.attribution import Targets

    pool = _pool()
    m = build_mixture("stat-sel", Request(Targets("joint", {"b": 0.4}, frozenset(), "only 3 of 3 items were graded"),
                                          pool, budget=8))
    assert m.strategy == "uniform" and "stat-sel fell back to uniform: only 3" in m.notes["fallback"]
    assert m.notes["touching"]["b"] == sum("b" in it.skills for it in m.items) / 8


def test_active_takes_the_items_the_model_gets_most_wrong(tiny_model_dir):
    """`active` ranks pool items by the model's mean loss per token of their reference answer: checked against the
    loss computed here by hand from the model's logits, one item at a time, and the top half is the set."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillgap.models import ModelConfig
    from skillgap.scoring import encode_completions

    pool = load_suite("arith").generate("train", 12, seed=0)
    m = build_mixture("active", Request({}, pool, budget=6, seed=0, student=ModelConfig(str(tiny_model_dir))))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    by_hand = {}
    for it in pool:
        (ids, n_prompt), = encode_completions(tok, [it], True)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        by_hand[it.id] = F.cross_entropy(logits[n_prompt - 1:-1], torch.tensor(ids[n_prompt:])).item()
    top = sorted(by_hand, key=lambda i: -by_hand[i])[:6]
    assert sorted(it.id for it in m.items) == sorted(top) and m.strategy == "active"
    assert m.notes["scored"] == 12 and m.notes["loss"]["threshold"] == pytest.approx(by_hand[top[-1]], rel=1e-4)
    with pytest.raises(ConfigError, match="needs that model"):
        build_mixture("active", Request({}, pool, budget=6))
