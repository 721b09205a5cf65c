import pytest

from skillgap.errors import ConfigError
from skillgap.grade import Grade
from skillgap.items import Item
from skillgap.profile import Record
from skillgap.store import RunStore


def test_batches_persist_and_resume(tmp_path):
    items = [Item(f"i{i}", str(i), ("s",), prompt=f"q{i}") for i in range(4)]
    store = RunStore(tmp_path)
    s1 = store.open_run("run-a", "profile", "m", "d", 0, 4, {"x": 1})
    store.add("run-a", s1, [(i, Record(it, f"out {i}", Grade(1.0, str(i), "ok"), 3)) for i, it in enumerate(items[:2])])
    store.close()

    store = RunStore(tmp_path)  # a new process
    s2 = store.open_run("run-a", "profile", "m", "d", 0, 4, {"x": 1})
    assert s2 != s1 and store.done_ids("run-a") == {"i0", "i1"}
    store.add("run-a", s2, [(i + 2, Record(it, "o", Grade(None, None, "no number", "parse_error"), 1))
                            for i, it in enumerate(items[2:])])
    recs = store.records("run-a")
    assert [r.item.id for r in recs] == ["i0", "i1", "i2", "i3"]
    assert recs[0].output == "out 0" and recs[3].grade.status == "parse_error" and recs[3].grade.score is None
    assert [s["generated"] for s in store.sessions("run-a")] == [2, 2]
    store.finish("run-a", {"overall": {"accuracy": 0.5}})
    assert store.runs()[0]["status"] == "done" and store.get("run-")["run_id"] == "run-a"


def test_get_by_prefix_errors(tmp_path):
    store = RunStore(tmp_path)
    for r in ("abc-1", "abc-2"):
        store.open_run(r, "profile", "m", "d", 0, 1, {})
    with pytest.raises(ConfigError, match="matches 2 runs"):
        store.get("abc")
    with pytest.raises(ConfigError, match="No run 'zzz'"):
        store.get("zzz")
