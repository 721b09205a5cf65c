"""Other harnesses' evaluation logs as graded records: lm-evaluation-harness, Inspect AI and LightEval.

    skillgap import results/smollm2/samples_arith_2026-12-08T00-10-00.jsonl --filter strict-match
    skillgap import logs/2026-12-08T00-10-00_arith_abc.eval
    skillgap import details/smollm2/2026-12-08/details_custom|arith|0_2026-12-08.parquet

A user who already ran an evaluation (often GPU-hours of it) gets the per-skill profile, the gap list and the paired
tests without generating a token again. Each reader turns the rows its harness writes into `Record`s: the item (its
question, reference and skills), the model's reply and a grade taken from the harness's own metric. The formats, as
the harnesses write them, are in docs/import.md. The harness is told by the file's structure, never by its name.

Rules, the same for every harness:
- correctness is the harness's metric, and it must be right/wrong (0/1, True/False, Inspect's C/I); a metric with
  other values (BLEU, F1, partial credit) is refused, naming the value and where it is;
- an item answered several times (Inspect's epochs) is one record with counts (`metadata.attempts`, `.hits`),
  not several records;
- a reply the harness could not grade (lm-eval's `[invalid]` from a regex filter, an Inspect sample that errored)
  is ungradable, counted apart, never dropped;
- skills come from the row (`doc.skills`, `metadata.skills`, `doc.specific.skills`), or from a labels file joined
  by id or by lm-eval's `doc_hash`; an item left without skills is an error naming it.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError, DataError
from skillgap.formats import records as rows_of, skill_list
from skillgap.grade import Grade
from skillgap.items import Item, Record

HARNESSES = ("lm-eval", "inspect", "lighteval")
SKILL_FIELDS = {"lm-eval": "doc.skills", "inspect": "metadata.skills", "lighteval": "doc.specific.skills"}
# Inspect's score letters (inspect_ai.scorer CORRECT, INCORRECT, NOANSWER); PARTIAL ('P') is not right/wrong
INSPECT_VALUES = {"C": True, "I": False, "N": False}
ZSTD = 93  # the zip compression method Inspect writes .eval members with


@dataclass(frozen=True)
class LogConfig:
    """Which part of a log is the verdict, and where the items' skills come from."""

    filter: str | None = field(default=None, metadata={
        "help": "lm-eval: the filter whose answers count (e.g. strict-match); needed when the log has several"})
    metric: str | None = field(default=None, metadata={
        "help": "the 0/1 metric (lm-eval, LightEval) or scorer (Inspect) that says right or wrong; needed when the "
                "log has several"})
    skills_from: str | None = field(default=None, metadata={
        "help": "a JSONL of {\"id\" or \"doc_hash\", \"skills\"} joined to the log's items (instead of the skills "
                "the rows carry)"})


@dataclass
class Log:
    """What a reader returns: the graded records and where they came from."""

    harness: str
    records: list[Record]
    meta: dict[str, Any]  # model, task, filter, metric, harness version, epochs, the files read


# ---------------------------------------------------------------- detection


def detect(path: Path) -> str:
    """Which harness wrote `path`, from its structure: a zip or a JSON with `eval` and `samples` is Inspect, a
    Parquet with `doc`, `metric` and `model_response` columns is LightEval, JSON lines with `doc_id` and
    `filtered_resps` are lm-eval's samples."""
    if path.is_dir():  # an output folder: name the logs in it, one import each
        found = sorted(str(p) for pattern in ("samples_*.jsonl", "*.eval", "details_*.parquet")
                       for p in path.rglob(pattern))
        raise ConfigError(f"{path} is a folder; import one log at a time: "
                          + (", ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")
                             if found else "it holds no samples_*.jsonl, .eval or details_*.parquet"))
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (give an lm-eval samples_*.jsonl, an Inspect .eval or .json log, "
                          "or a LightEval details_*.parquet).")
    with path.open("rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        return "inspect"
    if head == b"PAR1":
        return "lighteval"
    with path.open(errors="replace") as f:
        line = next((x for x in f if x.strip()), "")
    if line.lstrip()[:1] == "{":
        if path.suffix == ".json":  # one JSON document: an Inspect log (`eval`, `samples`)
            try:
                d = json.loads(path.read_text())
            except json.JSONDecodeError:
                d = None
            if isinstance(d, dict) and "eval" in d and ("samples" in d or "results" in d):
                return "inspect"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, 1, None, f"not JSON: {e.msg}") from None
        if isinstance(row, dict) and "doc_id" in row and "filtered_resps" in row:
            return "lm-eval"
    raise ConfigError(f"{path}: not a log skillgap reads. It reads lm-evaluation-harness samples_<task>_<date>.jsonl "
                      "(run with --log_samples), Inspect .eval and .json logs, and LightEval "
                      "details_<task>_<date>.parquet (--save-details).")


def read_log(path: str | Path, cfg: LogConfig | None = None, unlabelled: bool = False) -> Log:
    """The records of one log, checked: every problem names the file, the line or sample, and the field.
    `unlabelled`: the items' skills will come from a labeller, so none are read (every item gets none)."""
    cfg = cfg or LogConfig()
    path = Path(path)
    harness = detect(path)
    labels = read_labels(Path(cfg.skills_from)) if cfg.skills_from else {} if unlabelled else None
    log = {"lm-eval": read_lm_eval, "inspect": read_inspect, "lighteval": read_lighteval}[harness](path, cfg, labels)
    if not log.records:
        raise DataError(path, None, None, "no samples in the log")
    log.meta |= {"harness": harness, "file": str(path), "skills_from": cfg.skills_from}
    return log


def read_labels(path: Path) -> dict[str, tuple[str, ...]]:
    """`--skills-from`: id (or doc_hash) -> skills, from JSON lines `{"id" | "doc_hash", "skills": [...]}`."""
    if not path.is_file():
        raise ConfigError(f"--skills-from {path}: no such file.")
    out: dict[str, tuple[str, ...]] = {}
    for i, row in rows_of(path):
        key = row.get("id", row.get("doc_hash")) if isinstance(row, dict) else None
        if key is None:
            raise DataError(path, i, "id", "missing (give `id` or `doc_hash`)")
        out[str(key)] = skills_of(row.get("skills"), path, i, "skills")
    return out


def skills_of(value: Any, where: Any, line: Any, fld: str) -> tuple[str, ...]:
    """A skills value as a row carries it (a list of ids, or one string of them), never empty."""
    skills = skill_list(value, where, line, fld)
    if not skills:
        raise DataError(where, line, fld, f"expected a list of skill ids, got {value!r}")
    return tuple(dict.fromkeys(skills))


def dig(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, Mapping) else None
    return d


def item_skills(row: Mapping[str, Any], harness: str, keys: Iterable[str], labels: dict[str, tuple[str, ...]] | None,
                where: Any, line: Any) -> tuple[str, ...]:
    """The skills of one item: from the labels file (by the first of `keys` it has), else from the row's field."""
    fld = SKILL_FIELDS[harness]
    if labels == {}:  # a labeller names them later
        return ()
    if labels is not None:
        for k in keys:
            if k in labels:
                return labels[k]
        raise DataError(where, line, "id", f"item {next(iter(keys))!r} is not in the --skills-from file")
    value = dig(row, fld)
    if value is None:
        raise DataError(where, line, fld, "missing: the item carries no skills; label the items "
                        "(--skills-from labels.jsonl, or --labeler embed --skills inventory.yaml)")
    return skills_of(value, where, line, fld)


def binary(value: Any, where: Any, line: Any, fld: str) -> bool:
    """A metric value as right/wrong; anything else is refused (a mean of a non-0/1 metric means nothing here)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise DataError(where, line, fld, f"is {value!r}, not right/wrong (0 or 1): choose a 0/1 metric with --metric")


def choose(found: Iterable[str], asked: str | None, what: str, flag: str, where: Any) -> str:
    """The one metric / filter / scorer to read: the one asked for, or the only one there is."""
    found = list(dict.fromkeys(found))
    if asked is not None:
        if asked not in found:
            raise DataError(where, None, what, f"has no {asked!r}; the log has {', '.join(found) or 'none'}")
        return asked
    if len(found) != 1:
        raise DataError(where, None, what, f"the log has {len(found)} ({', '.join(found) or 'none'}): choose one "
                        f"with {flag}")
    return found[0]


def counted(records: list[Record]) -> list[Record]:
    """Several records of one item (epochs, samples) merged into one with counts: `metadata.attempts` and `.hits`;
    the grade is right only if every attempt was, and the first reply is kept as the output."""
    by_id: dict[str, list[Record]] = {}
    for r in records:
        by_id.setdefault(r.item.id, []).append(r)
    out = []
    for rs in by_id.values():
        if len(rs) == 1:
            out.append(rs[0])
            continue
        graded = [r for r in rs if r.grade.score is not None]
        hits = sum(r.grade.correct for r in graded)
        meta = rs[0].item.metadata | {"attempts": len(rs), "hits": hits, "ungraded": len(rs) - len(graded)}
        item = Item(rs[0].item.id, rs[0].item.answer, rs[0].item.skills, rs[0].item.prompt, rs[0].item.messages,
                    rs[0].item.split, meta)
        grade = (Grade(hits / len(rs), rs[0].grade.answer, f"{hits} of {len(rs)} attempts right",
                       rule=rs[0].grade.rule) if graded
                 else Grade(None, None, f"none of {len(rs)} attempts graded", rs[0].grade.status, rs[0].grade.rule))
        out.append(Record(item, rs[0].output, grade, sum(r.n_tokens for r in rs)))
    return out


# ---------------------------------------------------------------- lm-evaluation-harness


def read_lm_eval(path: Path, cfg: LogConfig, labels: dict[str, tuple[str, ...]] | None) -> Log:
    """`samples_<task>_<date>.jsonl` (`lm_eval --log_samples`): one line per document and filter, the metric's value
    under its own name; `results_<date>.json` beside it names the model and the version."""
    rows = list(rows_of(path))
    for i, row in rows:
        for fld in ("doc_id", "doc", "filter", "metrics", "target"):
            if fld not in row:
                raise DataError(path, i, fld, "missing (not an lm-eval samples line?)")
    filt = choose((r["filter"] for _, r in rows), cfg.filter, "filter", "--filter", path)
    rows = [(i, r) for i, r in rows if r["filter"] == filt]
    metric = choose((m for _, r in rows for m in r["metrics"]), cfg.metric, "metrics", "--metric", path)
    records, seen = [], set()
    for i, r in rows:
        iid = str(r["doc_id"])
        if iid in seen:
            raise DataError(path, i, "doc_id", f"{iid} appears twice for filter {filt!r}")
        seen.add(iid)
        if metric not in r:
            raise DataError(path, i, metric, "missing")
        skills = item_skills(r, "lm-eval", (iid, str(r.get("doc_hash"))), labels, path, i)
        prompt = dig(r, "arguments.gen_args_0.arg_0")
        ok = binary(r[metric], path, i, metric)
        meta: dict[str, Any] = {"doc_hash": r.get("doc_hash"), "source": "lm-eval"}
        target, choices = str(r["target"]), lm_eval_choices(r)
        if choices:  # multiple choice: one loglikelihood request per choice; the reply is the likeliest choice
            # [[loglikelihood, is_greedy], ...], written as strings by lm-eval's sanitize_list
            scores = [float(x[0] if isinstance(x, list) else x) for x in r.get("filtered_resps") or []]
            reply = choices[max(range(len(scores)), key=scores.__getitem__)] if len(scores) == len(choices) else ""
            target = choices[int(target)] if target.isdigit() and int(target) < len(choices) else target
            meta["choices"] = choices  # a guess is right 1 in len(choices): the joint model's chance rate
            grade = Grade(1.0 if ok else 0.0, reply, f"{metric} = {r[metric]}", rule=f"lm-eval:{metric}")
        else:
            reply = r.get("resps") or [[""]]
            reply = reply[0][0] if isinstance(reply[0], list) and reply[0] else reply[0]
            answer = r["filtered_resps"][0] if r.get("filtered_resps") else None
            if answer == "[invalid]":  # lm-eval's regex filters' "no match": no gradable answer
                grade = Grade(None, None, f"{filt}: no answer extracted", "parse_error", f"lm-eval:{metric}")
            else:
                grade = Grade(1.0 if ok else 0.0, str(answer), f"{metric} = {r[metric]}", rule=f"lm-eval:{metric}")
        item = Item(iid, target, skills, prompt=str(prompt if prompt is not None else r["doc"]), metadata=meta)
        records.append(Record(item, str(reply), grade))
    task, date = path.stem.removeprefix("samples_").rsplit("_", 1)
    results = path.parent / f"results_{date}.json"  # written by the same lm_eval call
    res = json.loads(results.read_text()) if results.is_file() else {}
    model = res.get("model_name") or dig(res, "config.model_args") or path.parent.name
    return Log("lm-eval", records, {"model": str(model), "task": task, "filter": filt, "metric": metric,
                                    "version": res.get("lm_eval_version"), "results": str(results) if res else None})


def lm_eval_choices(row: Mapping[str, Any]) -> list[str] | None:
    """A multiple-choice line's choices: its requests (`arguments.gen_args_i`) are (context, continuation) pairs,
    one per choice, where a generation request has one (context, generation settings) pair."""
    args = row.get("arguments")
    if not isinstance(args, Mapping) or len(args) < 2:
        return None
    conts = [a.get("arg_1") if isinstance(a, Mapping) else None for a in args.values()]
    return [c.strip() for c in conts] if all(isinstance(c, str) for c in conts) else None


# ---------------------------------------------------------------- Inspect AI


def inspect_samples(path: Path) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """(the log's header, [(where, sample)]) from an `.eval` zip (full samples, else the summaries) or a `.json`."""
    if zipfile.is_zipfile(path):
        if any(i.compress_type == ZSTD for i in zipfile.ZipFile(path).infolist()):
            try:  # Inspect compresses with Zstandard, which Python's zipfile reads only from 3.14 or with this patch
                importlib.import_module("zipfile_zstd")
            except ImportError:
                raise ConfigError(f"{path}: compressed with Zstandard; to read it: pip install zipfile-zstd (or "
                                  "skillgap[logs])") from None
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "header.json" not in names:
                raise DataError(path, None, "header.json", "missing from the .eval archive (an unfinished run?)")
            header = json.loads(z.read("header.json"))
            full = sorted(n for n in names if n.startswith("samples/") and n.endswith(".json")
                          and (n.count("/") == 1 or n.endswith("/sample.json")))
            if full:
                return header, [(f"{path}!{n}", json.loads(z.read(n))) for n in full]
            if "summaries.json" in names:
                return header, [(f"{path}!summaries.json[{i}]", s)
                                for i, s in enumerate(json.loads(z.read("summaries.json")))]
            raise DataError(path, None, "samples", "the archive holds no samples")
    d = json.loads(path.read_text())
    if not d.get("samples"):
        raise DataError(path, None, "samples", "missing: log the samples (Inspect's default) or give the .eval file")
    return d, [(f"{path}:samples[{i}]", s) for i, s in enumerate(d["samples"])]


def inspect_verdict(value: Any, where: str, fld: str) -> bool:
    if isinstance(value, str):
        if value.upper() in INSPECT_VALUES:
            return INSPECT_VALUES[value.upper()]
        raise DataError(where, None, fld, f"is {value!r}, not right/wrong (C, I or N; P is partial credit)")
    return binary(value, where, None, fld)


def text_of(value: Any) -> str:
    """Inspect's input: a string, or chat messages (the last user turn's text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        users = [m for m in value if isinstance(m, Mapping) and m.get("role") == "user"] or value
        content = users[-1].get("content", "") if isinstance(users[-1], Mapping) else users[-1]
        if isinstance(content, list):
            return "".join(c.get("text", "") for c in content if isinstance(c, Mapping))
        return str(content)
    return str(value)


def read_inspect(path: Path, cfg: LogConfig, labels: dict[str, tuple[str, ...]] | None) -> Log:
    """An Inspect log: `EvalSample`s with `id`, `epoch`, `input`, `target`, `output`, `scores` (scorer -> Score with
    `value`, `answer`, `explanation`) and `metadata`; the header's `eval` names the task, the model and the version."""
    header, samples = inspect_samples(path)
    if cfg.filter:
        raise ConfigError("--filter is lm-eval's; an Inspect log has scorers: choose one with --metric.")
    scorers = [s for _, smp in samples for s in (smp.get("scores") or {})]
    scorer = choose(scorers, cfg.metric, "scores", "--metric", path)
    records = []
    for where, s in samples:
        for fld in ("id", "input", "target"):
            if fld not in s:
                raise DataError(where, None, fld, "missing (not an Inspect sample?)")
        iid = str(s["id"])
        skills = item_skills(s, "inspect", (iid,), labels, where, None)
        target = s["target"] if isinstance(s["target"], str) else ", ".join(map(str, s["target"]))
        score = (s.get("scores") or {}).get(scorer)
        output = dig(s, "output.completion") or ""
        if s.get("error") or score is None:
            why = dig(s, "error.message") or s.get("error") or f"no {scorer} score"
            grade = Grade(None, None, str(why)[:200], "error", f"inspect:{scorer}")
        else:
            ok = inspect_verdict(score.get("value"), where, f"scores.{scorer}.value")
            grade = Grade(1.0 if ok else 0.0, score.get("answer"), str(score.get("explanation") or "")[:200],
                          rule=f"inspect:{scorer}")
        choices = s.get("choices") or []  # a multiple_choice() task's options: chance 1 in len(choices)
        item = Item(iid, target, skills, prompt=text_of(s["input"]),
                    metadata={"epoch": s.get("epoch", 1), "source": "inspect"}
                    | ({"choices": list(choices)} if len(choices) > 1 else {}))
        records.append(Record(item, str(output), grade))
    ev = header.get("eval", {})
    return Log("inspect", counted(records), {
        "model": ev.get("model"), "task": ev.get("task"), "filter": None, "metric": scorer,
        "version": (ev.get("packages") or {}).get("inspect_ai"), "task_version": ev.get("task_version"),
        "epochs": dig(ev, "config.epochs") or max((s.get("epoch", 1) for _, s in samples), default=1)})


# ---------------------------------------------------------------- LightEval


def read_lighteval(path: Path, cfg: LogConfig, labels: dict[str, tuple[str, ...]] | None) -> Log:
    """`details_<task>_<date>.parquet` (`lighteval ... --save-details`): rows of `doc` (`query`, `choices`,
    `gold_index`, `specific`, …), `metric` (name -> value) and `model_response` (`text`, …)."""
    import pyarrow.parquet as pq  # datasets' dependency; only this reader needs it

    table = pq.read_table(path)
    missing = {"doc", "metric", "model_response"} - set(table.column_names)
    if missing:
        raise DataError(path, None, sorted(missing)[0], "missing column (this file has "
                        f"{', '.join(table.column_names)}; a LightEval details file written by an older release?)")
    if cfg.filter:
        raise ConfigError("--filter is lm-eval's; a LightEval details file has metrics: choose one with --metric.")
    rows = table.to_pylist()
    metric = choose((m for r in rows for m, v in (r["metric"] or {}).items() if v is not None), cfg.metric, "metric",
                    "--metric", path)
    records = []
    for i, r in enumerate(rows, start=1):
        doc = r["doc"] or {}
        iid = str(doc.get("id") or i - 1)
        value = (r["metric"] or {}).get(metric)
        if value is None:
            raise DataError(path, i, f"metric.{metric}", "missing")
        skills = item_skills(r, "lighteval", (iid,), labels, path, i)
        gold = doc.get("gold_index")
        gold = gold[0] if isinstance(gold, list) and gold else gold
        choices = doc.get("choices") or []
        answer = choices[gold] if isinstance(gold, int) and 0 <= gold < len(choices) else str(gold)
        text = dig(r, "model_response.text") or [""]
        ok = binary(value, path, i, f"metric.{metric}")
        # a generative task's `choices` are its gold answers; a loglikelihood task's are the options to pick from
        picks = len(choices) > 1 and "GENERATIVE" not in (doc.get("sampling_methods") or [])
        item = Item(iid, str(answer), skills, prompt=str(doc.get("query") or ""),
                    metadata={"source": "lighteval"} | ({"choices": list(choices)} if picks else {}))
        extracted = dig(doc, "specific.extracted_predictions") or [None]
        records.append(Record(item, str(text[0] if isinstance(text, list) else text),
                              Grade(1.0 if ok else 0.0, extracted[0] if isinstance(extracted, list) else extracted,
                                    f"{metric} = {value}", rule=f"lighteval:{metric}")))
    task, date = path.name.removeprefix("details_").removesuffix(".parquet").rsplit("_", 1)
    # {out}/details/{model}/{date}/details_{task}_{date}.parquet beside {out}/results/{model}/results_{date}.json
    parts = path.resolve().parts
    at = max((i for i, p in enumerate(parts) if p == "details"), default=None)
    model, res_path = path.parent.parent.name, None
    if at is not None and at + 2 < len(parts):
        model = "/".join(parts[at + 1:-2])
        res_path = Path(*parts[:at], "results", *parts[at + 1:-2], f"results_{date}.json")
    res = json.loads(res_path.read_text()) if res_path and res_path.is_file() else {}
    return Log("lighteval", records, {
        "model": dig(res, "config_general.model_name") or model, "task": task, "filter": None, "metric": metric,
        "version": (dig(res, "config_general.lighteval_sha") or "?").strip("?") or None,
        "results": str(res_path) if res else None})
