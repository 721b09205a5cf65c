"""`skillgap import`: logs written by the real harnesses, offline, become profiles, gap lists and paired comparisons.

Every log here is written by the tool itself on a small local task (arith items with their skills): lm-evaluation-
harness with transformers, Inspect AI through the llama.cpp server the other tests start, LightEval with
transformers (through `tests/lighteval_offline.py`, which keeps LightEval 0.13 from importing its bundled tasks, two
of which reach the network when imported). Each comparison pairs two real verdicts on the same items: lm-eval's
two filters, two Inspect runs (sampled twice, and greedy), and LightEval against lm-eval on the same model. The
harnesses are the `logs` extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import one_line_error, output, run_cli
from skillgap.data import DataConfig, load_items
from skillgap.logs import LogConfig, read_log
from skillgap.verify import cluster_mcnemar_p, mcnemar_p, paired_counts, paired_delta

HERE = Path(__file__).parent
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "COLUMNS": "200", "NO_COLOR": "1"}


def need(module: str) -> None:
    """The harness, installed by the `logs` extra: skipped without it here, a failure in CI."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        why = f"{module} is not installed: pip install -e '.[logs]'"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def tool(*args: str, cwd: Path, timeout: float = 600) -> None:
    p = subprocess.run(list(args), cwd=cwd, env=ENV, text=True, capture_output=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"


def bin_of(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 arith test items as a plain dataset: question, answer, skills (and our id), and for multiple choice the
    answer among three wrong numbers (`choices`, `gold`)."""
    d = tmp_path_factory.mktemp("logs")
    items = load_items(DataConfig(suite="arith", split="test", limit=32, seed=0))[0]
    rows = [{"id": it.id, "question": it.prompt, "answer": it.answer, "skills": list(it.skills),
             "choices": choices_for(it.answer, i % 4), "gold": i % 4} for i, it in enumerate(items)]
    (d / "data").mkdir()
    (d / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def choices_for(answer: str, gold: int) -> list[str]:
    """Four options with the answer at `gold`: it and three numbers near it."""
    wrong = [f"{answer}1", f"{answer}0", f"1{answer}"]
    return wrong[:gold] + [answer] + wrong[gold:]


# ---------------------------------------------------------------- lm-evaluation-harness

LM_EVAL_TASK = """task: arith_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<|im_end|>"]
  max_gen_toks: 48
  do_sample: false
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "(-?[0-9][0-9.,/]*)\\\\s*$"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[0-9][0-9.,/]*)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
LM_EVAL_MC_TASK = """task: arith_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: choices
doc_to_target: gold
metric_list:
  - metric: acc
  - metric: acc_norm
metadata:
  version: 1.0
"""


@pytest.fixture(scope="module")
def lm_eval_log(task_dir: Path, smollm_dir: Path) -> Path:
    """samples_arith_local_*.jsonl of SmolLM2, from `lm_eval --log_samples`: two filters, so two verdicts a document."""
    need("lm_eval")
    (task_dir / "tasks").mkdir(exist_ok=True)
    (task_dir / "tasks" / "arith.yaml").write_text(LM_EVAL_TASK.format(data=task_dir / "data" / "test.jsonl"))
    (task_dir / "tasks" / "arith_mc.yaml").write_text(LM_EVAL_MC_TASK.format(data=task_dir / "data" / "test.jsonl"))
    tool(bin_of("lm_eval"), "--model", "hf", "--model_args", f"pretrained={smollm_dir},dtype=float32",
         "--include_path", "tasks", "--tasks", "arith_local,arith_mc", "--apply_chat_template", "--log_samples",
         "--output_path", "lm-eval", "--device", "cpu", "--batch_size", "32", cwd=task_dir)
    return next((task_dir / "lm-eval").rglob("samples_arith_local_*.jsonl"))


def test_lm_eval_log_becomes_a_profile_and_a_paired_comparison(lm_eval_log: Path, tmp_path: Path) -> None:
    smol = lm_eval_log
    lines = [json.loads(x) for x in smol.read_text().splitlines()]
    assert {r["filter"] for r in lines} == {"strict-match", "flexible-extract"}  # the real log has both
    runs = tmp_path / "runs"
    out = run_cli("import", str(smol), "--filter", "flexible-extract", "--output-path", str(tmp_path / "a.json"),
                  "--runs-dir", str(runs), cwd=tmp_path).stdout
    assert "gaps (weakest first):" in out and "lm-eval:exact_match 32" in out
    prof = json.loads((tmp_path / "a.json").read_text())
    # the profile is the log's own verdicts, regrouped: the same accuracy lm-eval reports for this filter
    mine = [r for r in lines if r["filter"] == "flexible-extract"]
    assert prof["overall"]["n"] == 32
    assert prof["overall"]["correct"] == sum(r["exact_match"] for r in mine)
    assert prof["overall"]["unparsed"] == sum(r["filtered_resps"] == ["[invalid]"] for r in mine)
    doc = {str(r["doc_id"]): r["doc"] for r in mine}
    assert all(rec["skills"] == doc[rec["id"]]["skills"] for rec in prof["records"])
    meta = prof["config"]["import"]
    assert (meta["harness"], meta["task"], meta["filter"], meta["metric"]) == ("lm-eval", "arith_local",
                                                                               "flexible-extract", "exact_match")
    assert prof["config"]["import"]["version"]  # lm_eval_version, from results_*.json beside it
    assert "mastery" in prof and "gaps" in prof

    # the same import again is the same run (keyed by the log's bytes and settings): nothing new in the store
    again = run_cli("import", str(smol), "--filter", "flexible-extract", "--runs-dir", str(runs), cwd=tmp_path)
    assert prof["run_id"] in again.stdout
    run_cli("import", str(smol), "--filter", "strict-match", "--output-path", str(tmp_path / "b.json"),
            "--runs-dir", str(runs), cwd=tmp_path)
    listed = run_cli("runs", "--runs-dir", str(runs), cwd=tmp_path).stdout
    assert listed.count("import") == 2  # another filter is another run

    # paired: the two filters' verdicts on the same 32 documents, McNemar on each document's pair
    cmp = run_cli("compare", str(tmp_path / "b.json"), str(tmp_path / "a.json"), "--output-path",
                  str(tmp_path / "cmp"), cwd=tmp_path).stdout
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert report["deltas"]["test"] == "mcnemar-exact" and report["deltas"]["overall"]["n"] == 32
    a = {r["id"]: r["correct"] for r in prof["records"]}
    b = {r["id"]: r["correct"] for r in json.loads((tmp_path / "b.json").read_text())["records"]}
    gained, lost = sum(a[i] and not b[i] for i in b), sum(b[i] and not a[i] for i in b)
    assert (report["deltas"]["overall"]["gained"], report["deltas"]["overall"]["lost"]) == (gained, lost)
    assert "overall" in cmp
    html = (tmp_path / "cmp" / "report.html").read_text()
    baseline = json.loads((tmp_path / "b.json").read_text())["run_id"]
    assert 'id="gaps"' in html and "Missing skills (joint diagnosis)" in html and baseline in html


def test_lm_eval_log_errors_name_the_file_and_field_before_writing(lm_eval_log: Path, cli, tmp_path: Path) -> None:
    smol = lm_eval_log
    err = one_line_error(*cli("import", str(smol), "--runs-dir", "r1"))
    assert str(smol) in err and "'filter'" in err and "strict-match" in err and "--filter" in err
    err = one_line_error(*cli("import", str(smol), "--filter", "loose", "--runs-dir", "r1"))
    assert "has no 'loose'" in err
    err = one_line_error(*cli("import", str(smol), "--filter", "strict-match", "--metric", "acc", "--runs-dir", "r1"))
    assert "'metrics'" in err and "exact_match" in err
    broken = tmp_path / "samples_arith_local_2026-01-01T00-00-00.jsonl"  # the real log with one line damaged
    rows = smol.read_text().splitlines()
    row = json.loads(rows[3])
    row["exact_match"] = 0.37
    broken.write_text("\n".join(rows[:3] + [json.dumps(row)] + rows[4:]) + "\n")
    err = one_line_error(*cli("import", str(broken), "--filter", row["filter"], "--runs-dir", "r1"))
    assert f"{broken}:4" in err and "exact_match" in err and "0.37" in err
    err = one_line_error(*cli("import", str(tmp_path / "nothing.jsonl"), "--runs-dir", "r1"))
    assert "no such file" in err
    assert not (tmp_path / "r1").exists()  # refused before the run store was even created


def test_multiple_choice_items_carry_their_chance_rate(lm_eval_log: Path, cli, tmp_path: Path) -> None:
    """lm-eval's multiple-choice log (one loglikelihood request per choice): acc and acc_norm are both there, so
    --metric is asked for; a guess is right 1 in 4, which the joint model is given as each item's chance rate."""
    mc = next(lm_eval_log.parent.glob("samples_arith_mc_*.jsonl"))
    err = one_line_error(*cli("import", str(mc), "--runs-dir", "r"))
    assert "'metrics'" in err and "acc, acc_norm" in err and "--metric" in err
    lines = [json.loads(x) for x in mc.read_text().splitlines()]
    log = read_log(mc, LogConfig(metric="acc"))
    assert sum(r.grade.correct for r in log.records) == sum(r["acc"] for r in lines)
    by_id = {str(r["doc_id"]): r for r in lines}
    for rec in log.records:
        row = by_id[rec.item.id]
        assert rec.item.metadata["choices"] == row["doc"]["choices"] and rec.item.answer == row["doc"]["answer"]
        likeliest = max(range(4), key=lambda j: float(row["filtered_resps"][j][0]))
        assert rec.output == row["doc"]["choices"][likeliest] and rec.grade.correct == (likeliest == row["doc"]["gold"])
    out = output(*cli("import", str(mc), "--metric", "acc", "--output-path", "mc.json", "--runs-dir", "r"))
    prof = json.loads((tmp_path / "mc.json").read_text())
    assert "lm-eval:acc 32" in out and {r.get("chance") for r in prof["records"]} == {0.25}


def test_skills_from_a_labels_file_joined_by_doc_hash(lm_eval_log: Path, tmp_path: Path) -> None:
    smol = lm_eval_log
    lines = [json.loads(x) for x in smol.read_text().splitlines() if '"strict-match"' in x]
    # a labeller's output keyed by lm-eval's doc_hash: every item gets one coarse skill from its first
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"doc_hash": r["doc_hash"], "skills": [f"coarse_{r['doc']['skills'][0]}"]})
                              + "\n" for r in lines))
    log = read_log(smol, LogConfig(filter="strict-match", skills_from=str(labels)))
    assert {r.item.skills for r in log.records} == {(f"coarse_{r['doc']['skills'][0]}",) for r in lines}
    labels.write_text("".join(json.dumps({"doc_hash": r["doc_hash"], "skills": ["x"]}) + "\n" for r in lines[1:]))
    with pytest.raises(Exception, match="not in the --skills-from file"):
        read_log(smol, LogConfig(filter="strict-match", skills_from=str(labels)))


def test_an_imported_profile_targets_training_and_the_set_trains_with_trl_sft(lm_eval_log: Path,
                                                                               tiny_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    need("trl")
    smol = lm_eval_log
    run_cli("import", str(smol), "--filter", "flexible-extract", "--output-path", str(tmp_path / "p.json"),
            "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    out = tmp_path / "set"
    run_cli("train", "--suite", "arith", "--profile", str(tmp_path / "p.json"), "--strategy", "stat-sel",
            "--budget", "24", "--export-only", "--output-path", str(out), "--runs-dir", str(tmp_path / "runs"),
            cwd=tmp_path)
    assert not (out / "adapter").exists()  # --export-only: no training
    mixture = json.loads((out / "mixture.json").read_text())
    from datasets import load_dataset, load_from_disk

    ds = load_dataset(str(out / "sft"))["train"]
    assert len(ds) == 24 and set(ds.column_names) == {"prompt", "completion", "source_id", "skills", "strategy"}
    assert set(ds["strategy"]) == {mixture["strategy"]}  # stat-sel, or uniform where the import's evidence is thin
    assert ds[0]["prompt"][0]["role"] == "user" and ds[0]["completion"][0]["role"] == "assistant"
    assert load_from_disk(str(out / "sft-arrow"))["source_id"] == ds["source_id"]
    pool = {it.id: it for it in load_items(DataConfig(suite="arith", split="train", limit=4000, seed=0))[0]}
    assert all(tuple(s) == pool[i].skills for i, s in zip(ds["source_id"], ds["skills"]))  # provenance is true
    # TRL's own command line trains on it as it is
    tool(bin_of("trl"), "sft", "--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(out / "sft"),
         "--output_dir", str(tmp_path / "trl"), "--max_steps", "2", "--per_device_train_batch_size", "4", "--use_cpu",
         "--report_to", "none", "--save_strategy", "no", "--logging_steps", "1", cwd=tmp_path)
    assert (tmp_path / "trl" / "model.safetensors").is_file()


# ---------------------------------------------------------------- Inspect AI

INSPECT_TASK = """from inspect_ai import Task, task
from inspect_ai.dataset import FieldSpec, json_dataset
from inspect_ai.scorer import match
from inspect_ai.solver import generate


@task
def arith():
    return Task(dataset=json_dataset("{data}", FieldSpec(input="question", target="answer", id="id",
                                                         metadata=["skills"]), limit=8),
                solver=generate(), scorer=match(numeric=True))
"""


@pytest.fixture(scope="module")
def inspect_logs(task_dir: Path, server: str) -> tuple[Path, Path]:
    """.eval logs of SmolLM2 (served by llama.cpp): 2 epochs sampled at temperature 0.7, and 1 epoch greedy."""
    need("inspect_ai")
    (task_dir / "inspect_arith.py").write_text(INSPECT_TASK.format(data=task_dir / "data" / "test.jsonl"))
    env = {"LLAMACPP_BASE_URL": server, "LLAMACPP_API_KEY": "none"}
    logs = []
    for name, args in (("sampled", ("--epochs", "2", "--temperature", "0.7", "--seed", "0")),
                       ("greedy", ("--epochs", "1", "--temperature", "0"))):
        p = subprocess.run([bin_of("inspect"), "eval", "inspect_arith.py", "--model", "openai-api/llamacpp/smollm2",
                            "--max-tokens", "48", "--log-dir", f"inspect-{name}", "--no-log-realtime", *args],
                           cwd=task_dir, env=ENV | env, text=True, capture_output=True, timeout=600)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        logs.append(next((task_dir / f"inspect-{name}").glob("*.eval")))
    return logs[0], logs[1]


def test_inspect_epochs_become_counts_and_compare_clustered(inspect_logs: tuple[Path, Path], tmp_path: Path) -> None:
    import importlib
    import zipfile

    importlib.import_module("zipfile_zstd")  # Inspect writes Zstandard members

    sampled, greedy = inspect_logs
    with zipfile.ZipFile(sampled) as z:  # the log's own verdicts, per sample file
        raw = [json.loads(z.read(n)) for n in z.namelist() if n.startswith("samples/")]
    assert len(raw) == 16
    out = run_cli("import", str(sampled), "--output-path", str(tmp_path / "s.json"), "--runs-dir",
                  str(tmp_path / "runs"), cwd=tmp_path).stdout
    assert "inspect:match" in out
    prof = json.loads((tmp_path / "s.json").read_text())
    assert len(prof["records"]) == 8  # items, not item-epochs
    assert prof["overall"]["n"] == 16 and prof["overall"]["correct"] == sum(s["scores"]["match"]["value"] == "C"
                                                                          for s in raw)
    hits = {}
    for s in raw:
        hits[s["id"]] = hits.get(s["id"], 0) + (s["scores"]["match"]["value"] == "C")
    assert {r["id"]: (r["attempts"], r["hits"]) for r in prof["records"]} == {i: (2, h) for i, h in hits.items()}
    assert {r["id"]: tuple(r["skills"]) for r in prof["records"]} == {s["id"]: tuple(s["metadata"]["skills"])
                                                                      for s in raw}
    assert prof["config"]["import"]["epochs"] == 2 and prof["config"]["import"]["version"]
    run_cli("import", str(greedy), "--output-path", str(tmp_path / "g.json"), "--runs-dir", str(tmp_path / "runs"),
            cwd=tmp_path)
    run_cli("compare", str(tmp_path / "s.json"), str(tmp_path / "g.json"), "--output-path", str(tmp_path / "cmp"),
            cwd=tmp_path)
    d = json.loads((tmp_path / "cmp" / "report.json").read_text())["deltas"]["overall"]
    g = {r["id"]: r["correct"] for r in json.loads((tmp_path / "g.json").read_text())["records"]}
    changes = [2 * int(g[i]) - hits[i] for i in hits]  # each item's share of right answers, in halves
    assert d["test"] == "clustered-mcnemar-exact" and d["p_value"] == pytest.approx(cluster_mcnemar_p(changes))
    assert (d["n"], d["n_before"], d["n_after"]) == (8, 16, 8)


# ---------------------------------------------------------------- LightEval

LIGHTEVAL_TASK = """from lighteval.metrics.metrics import Metrics
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc


def arith_prompt(line, task_name: str = None):
    return Doc(task_name=task_name, query=line["question"], choices=[line["answer"]], gold_index=0,
               specific={{"skills": line["skills"]}})


arith = LightevalTaskConfig(name="arith", prompt_function=arith_prompt, hf_repo="{data}", hf_subset="default",
                            hf_avail_splits=["test"], evaluation_splits=["test"], few_shots_split=None,
                            few_shots_select=None, generation_size=48, metrics=[Metrics.expr_gold_metric],
                            stop_sequence=[], version=0)
TASKS_TABLE = [arith]
"""


@pytest.fixture(scope="module")
def lighteval_log(task_dir: Path, smollm_dir: Path) -> Path:
    """details_arith|0_*.parquet of SmolLM2, from `lighteval accelerate --save-details`."""
    need("lighteval")
    (task_dir / "lighteval_arith.py").write_text(LIGHTEVAL_TASK.format(data=task_dir / "data"))
    tool(sys.executable, str(HERE / "lighteval_offline.py"), "accelerate",
         f"model_name={smollm_dir},dtype=float32,batch_size=32", "arith|0", "--custom-tasks", "lighteval_arith.py",
         "--save-details", "--output-dir", "lighteval", cwd=task_dir)
    return next((task_dir / "lighteval").rglob("details_*.parquet"))


def test_lighteval_details_become_a_profile_and_a_paired_comparison(
        lighteval_log: Path, lm_eval_log: Path, task_dir: Path, smollm_dir: Path, tmp_path: Path) -> None:
    """LightEval and lm-eval both number a dataset's rows from 0, so the same model graded by the two harnesses on
    the same items pairs up: where their extraction rules disagree is a paired comparison too."""
    import pyarrow.parquet as pq

    smol = lighteval_log
    rows = pq.read_table(smol).to_pylist()
    data = [json.loads(x) for x in (task_dir / "data" / "test.jsonl").read_text().splitlines()]
    assert all(r["doc"]["query"] == data[int(r["doc"]["id"])]["question"] for r in rows)  # ids are row numbers
    run_cli("import", str(smol), "--output-path", str(tmp_path / "a.json"), "--runs-dir", str(tmp_path / "runs"),
            cwd=tmp_path)
    prof = json.loads((tmp_path / "a.json").read_text())
    assert prof["overall"]["n"] == 32 and prof["overall"]["correct"] == sum(r["metric"]["extractive_match"]
                                                                          for r in rows)
    assert sorted(tuple(r["skills"]) for r in prof["records"]) == sorted(tuple(r["doc"]["specific"]["skills"])
                                                                         for r in rows)
    meta = prof["config"]["import"]
    assert meta["harness"] == "lighteval" and meta["task"] == "arith|0" and meta["metric"] == "extractive_match"
    assert meta["model"] == str(smollm_dir)  # from results_<date>.json beside the details
    run_cli("import", str(lm_eval_log), "--filter", "flexible-extract", "--output-path", str(tmp_path / "b.json"),
            "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    out = run_cli("compare", str(tmp_path / "b.json"), str(tmp_path / "a.json"), "--output-path",
                  str(tmp_path / "cmp"), cwd=tmp_path).stdout
    d = json.loads((tmp_path / "cmp" / "report.json").read_text())["deltas"]["overall"]
    a = {r["id"]: r["correct"] for r in prof["records"]}
    b = {r["id"]: r["correct"] for r in json.loads((tmp_path / "b.json").read_text())["records"]}
    assert (d["test"], d["n"], d["gained"], d["lost"]) == ("mcnemar-exact", 32, sum(a[i] and not b[i] for i in a),
                                                            sum(b[i] and not a[i] for i in a))
    assert "overall" in out


def test_labeller_names_the_skills_of_a_log_without_them(inspect_logs: tuple[Path, Path], task_dir: Path,
                                                         tmp_path: Path) -> None:
    """--labeler embed picks each question's skills from an inventory (here the labelled items, as neighbours)."""
    sampled, _ = inspect_logs
    out = run_cli("import", str(sampled), "--labeler", "embed", "--skills", str(task_dir / "data" / "test.jsonl"),
                  "--output-path", str(tmp_path / "l.json"), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    prof = json.loads((tmp_path / "l.json").read_text())
    inventory = {s for r in (json.loads(x) for x in (task_dir / "data" / "test.jsonl").read_text().splitlines())
                 for s in r["skills"]}
    assert all(len(r["skills"]) == 1 and r["skills"][0] in inventory for r in prof["records"])
    assert prof["config"]["identity"]["labeler"]["labeler"] == "embed" and "wrote" in out.stdout


# ---------------------------------------------------------------- counts, worked by hand


def test_counts_compare_by_item_and_reduce_to_mcnemar_with_one_answer_each() -> None:
    # three items answered twice: 0/2 -> 2/2, 1/2 -> 1/2, 2/2 -> 2/2: one item changed (+2), so p = 1 (2 of 2 signs)
    rec = [({"attempts": 2, "hits": h0, "status": "ok"}, {"attempts": 2, "hits": h1, "status": "ok"})
           for h0, h1 in ((0, 2), (1, 1), (2, 2))]
    d = paired_counts(rec)
    assert (d["before"], d["after"], d["n"], d["n_before"], d["gained"], d["lost"]) == (0.5, 5 / 6, 3, 6, 1, 0)
    assert d["p_value"] == 1.0
    # with one answer per item it is McNemar's exact test, as paired_delta computes it
    pairs = [(True, False)] + [(False, True)] * 7 + [(True, True)] * 3 + [(False, False)] * 4
    one = [({"correct": b, "status": "ok"}, {"attempts": 1, "hits": int(a), "status": "ok"}) for b, a in pairs]
    assert paired_counts(one)["p_value"] == pytest.approx(paired_delta(pairs)["p_value"]) == mcnemar_p(7, 1)


def test_attempts_weigh_like_separate_answers_in_the_joint_fit() -> None:
    from skillgap.attribution import AttributionConfig, attribute

    cfg = AttributionConfig(bootstrap=0, min_graded=1)
    counted = [{"id": "a", "skills": ["x"], "correct": False, "attempts": 4, "hits": 1},
               {"id": "b", "skills": ["x", "y"], "correct": False, "attempts": 4, "hits": 0},
               {"id": "c", "skills": ["y"], "correct": False, "attempts": 2, "hits": 1}]
    spread = [{"id": f"{r['id']}{i}", "skills": r["skills"], "correct": i < r["hits"]}
              for r in counted for i in range(r["attempts"])]
    a, b = attribute(counted, cfg), attribute(spread, cfg)
    assert {s: m.estimate for s, m in a.mastery.items()} == pytest.approx({s: m.estimate for s, m in b.mastery.items()})
    assert a.evidence["graded"] == 3  # items, not answers
    # an attempt with no gradable answer stays out of the fit, as a format failure does: 1 of 3 here
    partly = counted[:2] + [{"id": "c", "skills": ["y"], "correct": False, "attempts": 3, "hits": 1, "ungraded": 1}]
    assert {s: m.estimate for s, m in attribute(partly, cfg).mastery.items()} == pytest.approx(
        {s: m.estimate for s, m in a.mastery.items()})


def test_a_file_no_harness_wrote_is_refused(tmp_path: Path, cli) -> None:
    f = tmp_path / "other.jsonl"
    f.write_text(json.dumps({"id": 1, "question": "q"}) + "\n")
    err = one_line_error(*cli("import", str(f)))
    assert "not a log skillgap reads" in err and "lm-evaluation-harness" in err
    (tmp_path / "out" / "model").mkdir(parents=True)
    (tmp_path / "out" / "model" / "samples_a_2026.jsonl").write_text("")
    err = one_line_error(*cli("import", "out"))  # an output folder: which logs it holds
    assert "is a folder" in err and "samples_a_2026.jsonl" in err


def test_import_help_is_fast_and_lists_the_options(cli) -> None:
    out = output(*cli("import", "--help"))
    for flag in ("--filter", "--metric", "--skills-from", "--labeler", "--output-path"):
        assert flag in out
