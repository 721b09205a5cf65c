"""`skillgap profile --ray`: generation on a Ray Data actor pool, grading and the run store in the driver.

On a local 2-CPU Ray cluster with 2 replicas of a from-scratch model (scratch-tiny, random weights: its
outputs differ from item to item, which is all these tests need).
"""

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace

import pytest

from skillgap.data import DataConfig, load_items
from skillgap.errors import ConfigError
from skillgap.models import ModelConfig
from skillgap.recipes.profile import EvalConfig, profile, run_id_for


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for the module (2 CPUs: one per replica); its address, for RAY_ADDRESS."""
    ray = pytest.importorskip("ray", reason='install the dev extra: pip install -e ".[dev]"')
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny() -> ModelConfig:
    from skillgap.models.scratch import scratch_model

    return ModelConfig(model=str(scratch_model("scratch-tiny", "arith")), backend="hf", device="cpu")


def _rows(runs_dir):
    db = sqlite3.connect(runs_dir / "skillgap.db")
    rows = db.execute("SELECT run_id, idx, item_id, output, score, extracted, status, n_tokens FROM items "
                      "ORDER BY run_id, idx").fetchall()
    runs = [r[0] for r in db.execute("SELECT run_id FROM runs")]
    generated = [n for (n,) in db.execute("SELECT (SELECT COUNT(*) FROM items i WHERE i.session = s.session) "
                                          "FROM sessions s ORDER BY s.session")]
    created = dict(db.execute("SELECT item_id, created FROM items").fetchall())
    db.close()
    return rows, runs, generated, created


class Killed(Exception):
    pass


@pytest.mark.slow
def test_ray_profile_equals_local_resumes_and_keeps_the_run_id(cluster, tiny, tmp_path, monkeypatch):
    from skillgap.models import ray_pool

    data = DataConfig(suite="arith", limit=24, seed=0)
    local_ev = EvalConfig(batch_size=4, max_new_tokens=24)
    ray_ev = replace(local_ev, ray=True, ray_replicas=2)
    items = load_items(data)[0]
    assert run_id_for(tiny, data, ray_ev, items) == run_id_for(tiny, data, local_ev, items)  # where, not what
    local = profile(tiny, data, local_ev, runs_dir=tmp_path / "local")

    sent: list[list[str]] = []  # the items each call sent to Ray
    stop_after: list[int | None] = [2]  # the first run dies after 2 committed batches, as under kill -9
    real = ray_pool.generate_over_ray

    def spy(cfg, items, *args, **kwargs):
        sent.append([it.id for it in items])
        for n, batch in enumerate(real(cfg, items, *args, **kwargs)):
            if n == stop_after[0]:
                raise Killed
            yield batch

    monkeypatch.setattr(ray_pool, "generate_over_ray", spy)
    with pytest.raises(Killed):
        profile(tiny, data, ray_ev, runs_dir=tmp_path / "ray")
    _, _, generated, before = _rows(tmp_path / "ray")
    assert generated == [8]

    stop_after[0] = None
    remote = profile(tiny, data, ray_ev, runs_dir=tmp_path / "ray")
    rows, runs, generated, after = _rows(tmp_path / "ray")
    # The resumed run sent only what was missing; the 8 committed items were neither re-sent nor rewritten.
    assert len(sent) == 2 and len(sent[0]) == 24 and sorted(sent[1]) == sorted(set(sent[0]) - set(before))
    assert generated == [8, 16] and all(after[i] == c for i, c in before.items())
    # One run, written by the driver, every item once; the same outputs and grades as the local run.
    assert runs == [local.run_id] and remote.run_id == local.run_id
    assert len(rows) == 24 and len({r[2] for r in rows}) == 24
    assert rows == _rows(tmp_path / "local")[0]
    assert len({r[3] for r in rows}) > 3  # the model's outputs differ from item to item: a real comparison
    assert remote.to_dict()["records"] == local.to_dict()["records"]

    profile(tiny, data, ray_ev, runs_dir=tmp_path / "ray")  # finished: Ray is not even asked
    assert len(sent) == 2 and _rows(tmp_path / "ray")[2] == [8, 16, 0]


@pytest.mark.slow
def test_cli_ray_on_its_own_local_cluster_then_on_ray_address(cluster, tiny, tmp_path):
    import ray

    def cli(limit: int, *extra: str, ray_address: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
        if ray_address:
            env["RAY_ADDRESS"] = ray_address
        args = ["profile", "--model", "scratch-tiny", "--backend", "hf", "--device", "cpu", "--suite", "arith",
                "--limit", str(limit), "--batch-size", "4", "--max-new-tokens", "16", "--runs-dir", "runs", *extra]
        p = subprocess.run([sys.executable, "-m", "skillgap", *args], cwd=tmp_path, env=env, text=True, check=False,
                           capture_output=True, timeout=600)
        assert p.returncode == 0, p.stderr
        return p

    # No RAY_ADDRESS: the command starts a local cluster of its own, and stops it.
    cli(8, "--ray", "--ray-replicas", "2", "--output-path", "local.json")
    # RAY_ADDRESS: it joins that cluster (this test's), and leaves it running.
    cli(12, "--ray", "--ray-replicas", "2", "--ray-cpus-per-replica", "1", "--output-path", "p.json",
        ray_address=cluster)
    assert ray.cluster_resources().get("CPU") == 2
    prof = json.loads((tmp_path / "p.json").read_text())
    assert prof["config"]["eval"]["ray"] is True and prof["config"]["eval"]["ray_replicas"] == 2
    assert len(prof["records"]) == 12 and len(json.loads((tmp_path / "local.json").read_text())["records"]) == 8
    # The same command without --ray finds the same run, finished: nothing is generated again.
    again = cli(12)
    assert "12 of 12 items already done" in again.stderr
    db = sqlite3.connect(tmp_path / "runs" / "skillgap.db")
    assert len(db.execute("SELECT run_id FROM runs").fetchall()) == 2
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT item_id) FROM items WHERE run_id=?",
                      (prof["run_id"],)).fetchone() == (12, 12)


def test_ray_flags_are_checked_first(tmp_path, cli):
    cases = [(["--ray-replicas", "3"], "--ray-replicas without --ray"),
             (["--ray", "--ray-replicas", "0"], "--ray-replicas must be at least 1"),
             (["--ray", "--ray-gpus-per-replica", "-1"], "at least 0")]
    for extra, message in cases:
        code, _, err = cli("profile", "--backend", "hf", "--suite", "arith", "--limit", "4", "--runs-dir", "runs", *extra)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.db"))


def test_missing_ray_is_one_line_naming_the_install(monkeypatch):
    from skillgap.models.ray_pool import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    for call in (EvalConfig(ray=True).check, import_ray):
        with pytest.raises(ConfigError) as e:
            call()
        assert 'pip install "ray[data]"' in str(e.value) and "\n" not in str(e.value)
    EvalConfig().check()  # without --ray, Ray is not needed


def test_import_skillgap_does_not_import_ray():
    code = ("import sys, skillgap, skillgap.cli, skillgap.recipes.profile, skillgap.models.ray_pool; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
