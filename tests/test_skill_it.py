"""Skill-it's online mixture, the baselines behind the same interface, and skills graphs: cases worked by hand."""

import json
import math

import pytest

from skillgap.errors import ConfigError, DataError
from skillgap.graph import SkillsGraph, from_losses, load_graph, parse_rows, write_graph
from skillgap.items import Item
from skillgap.target.online import Curriculum, MixtureStream, Static, make_policy, skill_sources
from skillgap.target.skill_it import SkillIt

AB = ["a", "b"]


def softmax(z):
    e = [math.exp(x) for x in z]
    return [x / sum(e) for x in e]


def test_skill_it_initial_weights_and_update_by_hand():
    # A = [[1, 1], [0, 1]]: training on a helps b. The hand-given edge counts 0.5 (reference code).
    p = SkillIt(parse_rows("11/01", AB), eta=0.5, window=2)
    assert p.A == [[1, 0.5], [0, 1]]
    assert SkillIt(SkillsGraph(("a", "b"), ((1.0, 1.0), (0.0, 1.0)), "estimated")).A == [[1, 1], [0, 1]]
    # before any loss: p ∝ exp(η A·1) = exp(0.5·1.5), exp(0.5·1)
    assert list(p.weights().values()) == pytest.approx(softmax([0.75, 0.5]))
    p.update({"a": 2.0, "b": 1.0})  # window holds [2, 1]: z = 0.5·(2 + 0.5·1), 0.5·1
    assert list(p.weights().values()) == pytest.approx(softmax([1.25, 0.5]))
    p.update({"a": 0.2, "b": 3.0})  # window sum [2.2, 4]: z = 0.5·(2.2 + 2), 0.5·4
    assert list(p.weights().values()) == pytest.approx(softmax([2.1, 2.0]))
    p.update({"a": 0.0, "b": 0.0})  # window of 2 drops the first: [0.2, 3]: z = 0.5·1.7, 0.5·3
    assert list(p.weights().values()) == pytest.approx(softmax([0.85, 1.5]))
    # b's loss is high and a helps b, yet b itself gets more weight: A·L decides, not L alone.
    assert p.weights()["b"] > p.weights()["a"]


def test_skill_it_changes_weights_once_per_round():
    p = SkillIt(parse_rows("10/01", AB), eta=1.0, window=3, every=2)
    w0 = p.weights()
    assert w0 == {"a": 0.5, "b": 0.5}
    p.update({"a": 5.0, "b": 1.0})
    assert p.weights() == w0  # mid-round: unchanged
    p.update({"a": 5.0, "b": 1.0})
    assert list(p.weights().values()) == pytest.approx(softmax([10.0, 2.0]))  # window sums both evaluations


def test_skill_it_large_losses_do_not_overflow():
    p = SkillIt(parse_rows("10/01", AB), eta=10.0)
    p.update({"a": 1e4, "b": 1.0})
    assert p.weights()["a"] == pytest.approx(1.0)


def test_baselines_share_the_interface():
    r = make_policy("random", ["x", "y", "z"], proportions=[1, 1, 2])
    assert r.weights() == {"x": 0.25, "y": 0.25, "z": 0.5}
    r.update({"x": 9.0, "y": 9.0, "z": 9.0})
    assert r.weights() == {"x": 0.25, "y": 0.25, "z": 0.5}  # static
    assert make_policy("stratified", AB).weights() == {"a": 0.5, "b": 0.5}
    g = parse_rows("100/110/001", ["x", "y", "z"])  # y helps x: y comes first
    c = make_policy("curriculum", ["x", "y", "z"], g, every=2)
    assert isinstance(c, Curriculum) and c.order == ["y", "x", "z"]
    assert c.weights() == {"y": 1.0, "x": 0.0, "z": 0.0}
    c.update({})
    c.update({})
    assert c.weights() == {"y": 0.5, "x": 0.5, "z": 0.0}
    with pytest.raises(ConfigError, match="Did you mean 'skill-it'"):
        make_policy("skillit", AB)
    with pytest.raises(ConfigError, match="needs a skills graph"):
        make_policy("skill-it", AB)


def test_graph_order_puts_helpers_first():
    lego = parse_rows("10000/11110/00100/00010/00001", [f"d{i}" for i in range(5)])
    assert lego.order() == ["d1", "d0", "d2", "d3", "d4"]
    assert [(a, b) for a, b, _ in lego.edges()] == [("d1", "d0"), ("d1", "d2"), ("d1", "d3")]


def test_graph_from_losses_normalises_each_column_by_its_largest_change():
    before = {"a": 2.0, "b": 2.0, "c": 1.0, "d": 1.0}
    after = {"a": {"a": 1.0, "b": 1.5, "c": 1.0, "d": 1.4},  # a: lowers a by 1, b by 0.5; raises d by 0.4
             "b": {"a": 2.0, "b": 1.0, "c": 1.0, "d": 0.8},  # b: lowers b by 1, d by 0.2
             "c": {"a": 2.5, "b": 2.0, "c": 1.0, "d": 1.0},  # c: raises a by 0.5
             "d": {"a": 2.0, "b": 2.0, "c": 1.0, "d": 0.9}}  # d: lowers d by 0.1; c never moves
    g = from_losses(["a", "b", "c", "d"], before, after)
    assert g.matrix == ((1.0, 0.5, 0.0, -1.0),  # column d scaled by its largest change, 0.4
                        (0.0, 1.0, 0.0, 0.5),
                        (-0.5, 0.0, 0.0, 0.0),
                        (0.0, 0.0, 0.0, 0.25))
    assert g.notes["no_signal"] == ["c"] and g.source == "estimated"


def test_graphs_by_hand_and_from_files(tmp_path):
    with pytest.raises(ConfigError, match="expected 2 rows of 2 digits"):
        parse_rows("101/010", AB)
    path, png = write_graph(parse_rows("11/01", AB), tmp_path / "g.json")
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert load_graph(str(path), AB).matrix == ((1.0, 1.0), (0.0, 1.0))
    with pytest.raises(DataError, match="field 'skills'"):
        load_graph(str(path), ["a", "c"])
    (tmp_path / "bad.json").write_text(json.dumps({"skills": AB}))
    with pytest.raises(DataError, match="bad.json: field 'matrix': missing"):
        load_graph(str(tmp_path / "bad.json"), AB)
    with pytest.raises(ConfigError, match="2x2 matrix"):
        SkillsGraph(("a", "b"), ((1.0,),))


def _pool():
    return [Item(f"{s}{i}", "1", (s,), prompt=f"{s} {i}", split="train") for s in AB for i in range(5)]


def test_stream_draws_by_the_weights_and_replays_after_a_change():
    p = Static({"a": 1.0, "b": 0.0})
    s = MixtureStream(p, skill_sources(None, _pool(), seed=0), seed=0)
    it = iter(s)
    first = [next(it).skills[0] for _ in range(6)]
    assert first == ["a"] * 6
    p.proportions = {"a": 0.0, "b": 1.0}  # the policy moved; the stream takes it from the next example
    s.refresh()
    assert s.changes[-1][0] == 6
    rest = [next(it).skills[0] for _ in range(4)]
    assert rest == ["b"] * 4
    # a second pass (a resumed run skipping what it trained on) draws the same sequence from the log
    again = iter(s)
    assert [next(again).id for _ in range(10)] == [x.id for x in _replay(s)]


def _replay(s):
    fresh = MixtureStream(Static({"a": 1.0, "b": 0.0}), skill_sources(None, _pool(), seed=0), seed=0, changes=s.changes)
    it = iter(fresh)
    return [next(it) for _ in range(10)]


def test_sources_and_natural_proportions_for_every_kind_of_data():
    from skillgap.suites import load_suite
    from skillgap.target.online import natural_proportions

    arith = load_suite("arith")  # a generator without per-skill streams: synthesize in chunks
    items = [next(skill_sources(arith, [], seed=0)("round")) for _ in range(3)]
    assert all("round" in it.skills and it.split == "train" for it in items)
    assert natural_proportions(["x", "y"], None, [Item("1", "1", ("x",), prompt="q"),
                                                  Item("2", "1", ("x", "y"), prompt="q")]) == [2.0, 1.0]
    assert natural_proportions(load_suite("lego").skills.ids, load_suite("lego"), []) == [1, 1, 1, 3, 5]
    assert sum(natural_proportions(arith.skills.ids, arith, [])) > 1000
    with pytest.raises(ConfigError, match="No training items carry skill 'z'"):
        next(skill_sources(None, _pool(), seed=0)("z"))
