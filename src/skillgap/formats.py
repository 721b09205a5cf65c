"""Reading other people's datasets as items: GSM8K, MATH, instruction data (Alpaca's `instruction`/`output`, as
Instruct-SkillMix releases it), text classification with label words (SST-2, SST-5, TREC), and any JSONL, CSV, Parquet or saved `datasets` dataset with a field mapping.

    skillgap profile --data gsm8k/test.jsonl --format gsm8k ...
    skillgap profile --data mine.csv --field prompt=question --field answer=target --field skills=tags ...

A format turns one record into an `Item`; every problem names the file, the row and the field.
Answers are normalised the way each dataset is graded: GSM8K's number after `####` (separators
dropped), MATH's last `\\boxed{}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skillgap.answers import last_boxed
from skillgap.errors import ConfigError, DataError, unknown_name
from skillgap.grade import reference_problem
from skillgap.items import Item, item_from_dict, read_text

FORMATS = ("auto", "items", "gsm8k", "math", "alpaca", "classification", "table")
# The grader each format's answers call for: a file of any answers (items, a table) gets `auto`, which grades each
# item by its reference (numbers, True/False, yes/no, clock times, text).
GRADERS = {"items": "auto", "gsm8k": "numeric", "math": "math", "alpaca": "judge", "classification": "exact",
           "table": "auto"}
# LM-BFF's label words (Gao et al., ACL 2021), the ones Panigrahi et al. graft with, and a prompt per task. A file's
# task is its name up to the first "_" (sst2_train.jsonl -> sst2); any other file names its classes in `label_name`.
LABEL_WORDS = {"sst2": ("terrible", "great"), "sst5": ("terrible", "bad", "okay", "good", "great"),
               "trec": ("Description", "Entity", "Expression", "Human", "Location", "Number")}
TEMPLATES = {"sst2": "Review: {text}\nIn one word ({choices}), the movie was:",
             "sst5": "Review: {text}\nIn one word ({choices}), the movie was:",
             "trec": "Question: {text}\nIn one word ({choices}), what kind of answer does it ask for?"}
GENERIC_TEMPLATE = "{text}\nIn one word ({choices}), the label is:"
_CALC = re.compile(r"<<[^>]*>>")  # GSM8K's calculator annotations


def records(path: Path) -> Iterator[tuple[int, Any]]:
    """(row number, record) of a JSONL, CSV or Parquet file, or of a dataset saved with `save_to_disk`."""
    if path.is_dir():
        from datasets import load_from_disk

        try:
            ds = load_from_disk(str(path))
        except FileNotFoundError as e:
            raise DataError(path, None, None, f"not a dataset saved with save_to_disk ({e})") from None
        if hasattr(ds, "keys"):  # a DatasetDict: take its test split, else its only one
            ds = ds["test"] if "test" in ds else ds[next(iter(ds.keys()))]
        yield from enumerate(ds, start=1)
        return
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    if path.suffix in (".csv", ".parquet"):
        from datasets import load_dataset

        if path.suffix == ".csv":
            read_text(path)  # an encoding error names its line here, not deep inside the CSV reader

        ds = load_dataset(path.suffix[1:], data_files=str(path), split="train")
        start = 2 if path.suffix == ".csv" else 1  # a CSV's first line is its header
        yield from enumerate(ds, start=start)
        return
    for lineno, raw in enumerate(read_text(path).split("\n"), start=1):
        if raw.strip():
            try:
                yield lineno, json.loads(raw)
            except json.JSONDecodeError as e:
                raise DataError(path, lineno, None, f"invalid JSON ({e.msg} at column {e.colno})") from None


def sniff(path: Path, first: Any) -> str:
    """The format of a file from its first record."""
    if path.is_dir() or path.suffix in (".csv", ".parquet"):
        return "table"
    if isinstance(first, dict):
        if "skills" in first and "answer" in first and ("prompt" in first or "messages" in first):
            return "items"
        if "question" in first and "####" in str(first.get("answer", "")):
            return "gsm8k"
        if "problem" in first and "solution" in first:
            return "math"
        if "instruction" in first and "output" in first:
            return "alpaca"
        if ("sentence" in first or "text" in first) and isinstance(first.get("label"), int):
            return "classification"
    return "items"


def skill_list(value: Any, path: Any, row: Any, field: str) -> tuple[str, ...]:
    """A row's skills: a list of ids, a JSON list in a string, or ids separated by ';', '|' or ','."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else re.split(r"[;|,]", value)
        except json.JSONDecodeError:
            raise DataError(path, row, field, f"not a list of skills: {value!r}") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise DataError(path, row, field, f"expected a list of skill ids, got {value!r}")
    return tuple(s.strip() for s in value if s.strip())


def gsm8k_item(d: dict[str, Any], path: Path, row: int, stem: str) -> Item:
    for fld in ("question", "answer"):
        if not isinstance(d.get(fld), str):
            raise DataError(path, row, fld, "missing or not a string (GSM8K records have 'question' and 'answer')")
    if "####" not in d["answer"]:
        raise DataError(path, row, "answer", "no '####' before the final answer")
    work, final = d["answer"].rsplit("####", 1)
    answer = final.strip().replace(",", "")
    steps = _CALC.sub("", work).strip()
    return Item(id=str(d.get("id", f"{stem}-{row}")), prompt=d["question"], answer=answer,
                skills=skill_list(d.get("skills"), path, row, "skills"), split=str(d.get("split", "test")),
                metadata={"format": "gsm8k", "row": row}, completion=f"{steps}\nThe answer is {answer}.")


def math_item(d: dict[str, Any], path: Path, row: int, stem: str) -> Item:
    if not isinstance(d.get("problem"), str):
        raise DataError(path, row, "problem", "missing or not a string (MATH records have 'problem' and 'solution')")
    answer = d.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        answer = last_boxed(str(d.get("solution", "")))
        if answer is None:
            raise DataError(path, row, "solution", "no \\boxed{} answer and no 'answer' field")
    skills = skill_list(d.get("skills"), path, row, "skills")
    meta = {k: d[k] for k in ("subject", "level", "type") if k in d}
    return Item(id=str(d.get("unique_id") or d.get("id") or f"{stem}-{row}"), prompt=d["problem"], answer=answer,
                skills=skills, split=str(d.get("split", "test")), metadata={"format": "math", "row": row} | meta,
                completion=d.get("solution"))


def alpaca_item(d: dict[str, Any], path: Path, row: int, stem: str) -> Item:
    """An instruction-tuning record (`instruction`, `input`, `output`; Instruct-SkillMix adds `skills` or
    `skills_joined_str` and `query_type`): a prompt and completion with no reference answer (a judge grades)."""
    for fld in ("instruction", "output"):
        if not isinstance(d.get(fld), str) or not d[fld].strip():
            raise DataError(path, row, fld, "missing or empty (instruction records have 'instruction' and 'output')")
    prompt = d["instruction"].strip() + (f"\n\n{d['input'].strip()}" if str(d.get("input") or "").strip() else "")
    skills = d.get("skills") if d.get("skills") is not None else d.get("skills_joined_str")
    meta = {k: d[k] for k in ("query_type", "generator") if k in d}
    return Item(id=str(d.get("id") or f"{stem}-{row}"), prompt=prompt, answer="",
                skills=skill_list(skills, path, row, "skills"), split=str(d.get("split") or "train"),
                metadata={"format": "alpaca", "row": row} | meta, completion=d["output"])


def classification_item(d: dict[str, Any], path: Path, row: int, task: str) -> Item:
    """A labelled sentence (`sentence` or `text`, integer `label`): the prompt names the label words, the answer is
    the gold one, and `metadata["choices"]` lists them all (what label-word scoring ranks, see localize)."""
    text = d.get("sentence", d.get("text"))
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, row, "sentence", "missing or empty (classification records have 'sentence' or 'text')")
    if not isinstance(d.get("label"), int) or isinstance(d.get("label"), bool):
        raise DataError(path, row, "label", f"expected an integer class, got {d.get('label')!r}")
    words = LABEL_WORDS.get(task)
    if words is None:  # classes named in the file: the choices are filled in once every row is read
        if not isinstance(d.get("label_name"), str) or not d["label_name"].strip():
            raise DataError(path, row, "label_name", f"missing: {path.name} is not one of {', '.join(LABEL_WORDS)} "
                                                     "(by its name), so each row must name its class")
        word, words = d["label_name"].strip(), ()
    elif not 0 <= d["label"] < len(words):
        raise DataError(path, row, "label", f"{d['label']} is not a class of {task} (0..{len(words) - 1})")
    else:
        word = words[d["label"]]
    prompt = TEMPLATES.get(task, GENERIC_TEMPLATE).format(text=text.strip(), choices=" / ".join(words))
    # the completion is the label word alone: what training teaches is what label-word scoring ranks
    return Item(id=f"{path.stem}-{row}", prompt=prompt, answer=word, skills=(task,), split="test",
                metadata={"format": "classification", "row": row, "label": d["label"], "choices": list(words),
                          "text": text.strip()}, completion=word)


def _name_classes(items: list[Item]) -> list[Item]:
    """Generic classification files: every item's choices are the classes named in the file, in label order."""
    from dataclasses import replace

    names = dict(sorted({it.metadata["label"]: it.answer for it in items}.items()))
    words = list(names.values())
    return [replace(it, prompt=GENERIC_TEMPLATE.format(text=it.metadata["text"], choices=" / ".join(words)),
                    metadata=it.metadata | {"choices": words}, completion=it.answer) for it in items]


def table_item(d: dict[str, Any], path: Path, row: int, stem: str, fields: dict[str, str]) -> Item:
    """A row of any table: `fields` maps item fields (prompt, answer, skills, id, completion) to its columns."""
    cols = {"id": "id", "prompt": "prompt", "answer": "answer", "skills": "skills", "completion": "completion"} | fields
    for target in ("prompt", "answer"):
        if d.get(cols[target]) is None:
            have = ", ".join(map(str, d.keys()))
            raise DataError(path, row, cols[target], f"missing; map it with --field {target}=COLUMN (columns: {have})")
    completion = d.get(cols["completion"])
    return Item(id=str(d.get(cols["id"]) or f"{stem}-{row}"), prompt=str(d[cols["prompt"]]),
                answer=str(d[cols["answer"]]).strip(), skills=skill_list(d.get(cols["skills"]), path, row, cols["skills"]),
                split=str(d.get("split") or "test"), metadata={"format": "table", "row": row},
                completion=None if completion is None else str(completion))


def read_items(path: str | Path, fmt: str = "auto", fields: dict[str, str] | None = None, grader: str | None = None,
               check: bool = False) -> tuple[list[Item], str]:
    """The items of a dataset file, and the grader that grades them: `grader`, else the one that suits the format.

    With `check`, every reference is checked against that grader, so a file it cannot grade fails here, naming the
    line and the field, before any model loads (a training file, never graded, is not checked)."""
    if fmt not in FORMATS:
        raise unknown_name("format", fmt, list(FORMATS))
    path = Path(path)
    rows = records(path)
    items: list[Item] = []
    seen: dict[str, int] = {}
    for row, d in rows:
        if fmt == "auto":
            fmt = "table" if fields else sniff(path, d)
        if not isinstance(d, dict):
            raise DataError(path, row, None, f"expected a JSON object, got {type(d).__name__}")
        if fmt == "items":
            item = item_from_dict(d, path, row)
        elif fmt == "gsm8k":
            item = gsm8k_item(d, path, row, path.stem)
        elif fmt == "math":
            item = math_item(d, path, row, path.stem)
        elif fmt == "alpaca":
            item = alpaca_item(d, path, row, path.stem)
        elif fmt == "classification":
            item = classification_item(d, path, row, path.stem.split("_")[0])
        else:
            item = table_item(d, path, row, path.stem, fields or {})
        if item.id in seen:
            raise DataError(path, row, "id", f"{item.id!r} already used on line {seen[item.id]}")
        seen[item.id] = row
        items.append(item)
    if not items:
        raise DataError(path, None, None, "no items in the file; nothing to evaluate")
    if fmt == "classification" and not items[0].metadata["choices"]:
        items = _name_classes(items)
    spec = grader or GRADERS[fmt if fmt != "auto" else "items"]
    for item in items if check else ():
        if problem := reference_problem(spec, item.answer):
            field = "label" if fmt == "classification" else (fields or {}).get("answer", "answer")
            raise DataError(path, seen[item.id], field, f"reference answer {item.answer!r} {problem}.")
    return items, spec


def parse_fields(specs: list[str] | None) -> dict[str, str]:
    """--field prompt=question --field answer=target -> {'prompt': 'question', 'answer': 'target'}."""
    out: dict[str, str] = {}
    for spec in specs or []:
        target, sep, source = spec.partition("=")
        if not sep or target not in ("id", "prompt", "answer", "skills", "completion") or not source:
            raise ConfigError(f"--field {spec!r}: expected TARGET=COLUMN with TARGET one of id, prompt, answer, "
                              "skills, completion.")
        out[target] = source
    return out
