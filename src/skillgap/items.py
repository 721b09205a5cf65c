"""Items: one question, its reference answer, and the skills it needs.

On disk an item is one JSON line that `datasets.load_dataset("json", data_files=...)` reads as is:

    {"id": "arith-test-0", "messages": [{"role": "user", "content": "..."}], "answer": "85",
     "skills": ["add_multi"], "k": 1, "split": "test", "metadata": {...}}

`prompt` (a string) may stand instead of `messages`, as in TRL's prompt/completion datasets, and
`completion` (a string) is the reference solution that training uses; evaluation never reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillgap.errors import DataError
from skillgap.io import atomic

if TYPE_CHECKING:  # a type only: items stay below grading
    from skillgap.grade import Grade

Message = dict[str, str]


@dataclass(frozen=True)
class Item:
    """One evaluation or training example. `k` is the number of skills it composes."""

    id: str
    answer: str
    skills: tuple[str, ...]
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    split: str = "test"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    completion: str | None = None  # a worked reference solution, the SFT target

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(f"Item {self.id!r}: give exactly one of `prompt` or `messages`.")

    @property
    def k(self) -> int:
        return len(self.skills)

    def chat(self) -> list[Message]:
        """The conversation to send to a chat model."""
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id}
        if self.messages is not None:
            d["messages"] = [dict(m) for m in self.messages]
        else:
            d["prompt"] = self.prompt
        if self.completion is not None:
            d["completion"] = self.completion
        d.update(answer=self.answer, skills=list(self.skills), k=self.k, split=self.split,
                 metadata=self.metadata)
        return d


@dataclass(frozen=True)
class Record:
    """One item, what the model said, and its grade: a row of a run, as the store keeps it and a profile reads it."""

    item: Item
    output: str
    grade: Grade
    n_tokens: int = 0


def item_from_dict(d: Any, path: str | Path = "<memory>", line: int | None = None) -> Item:
    """Validate one record; every problem names the file, line and field."""

    def bad(fld: str | None, msg: str) -> DataError:
        return DataError(path, line, fld, msg)

    if not isinstance(d, dict):
        raise bad(None, f"expected a JSON object, got {type(d).__name__}")
    for fld in ("id", "answer", "skills"):
        if fld not in d or d[fld] is None:
            raise bad(fld, "missing")
    if not isinstance(d["id"], (str, int)):
        raise bad("id", f"expected a string, got {type(d['id']).__name__}")
    if not isinstance(d["answer"], (str, int, float)):
        raise bad("answer", f"expected a string or number, got {type(d['answer']).__name__}")
    skills = d["skills"]
    if not isinstance(skills, list) or not all(isinstance(s, str) and s for s in skills):
        raise bad("skills", "expected a list of skill ids (non-empty strings)")
    if "k" in d and d["k"] is not None and d["k"] != len(skills):
        raise bad("k", f"is {d['k']} but the item lists {len(skills)} skills")
    prompt, messages = d.get("prompt"), d.get("messages")
    if (prompt is None) == (messages is None):
        raise bad("prompt", "give exactly one of 'prompt' (a string) or 'messages' (a list)")
    if prompt is not None and not isinstance(prompt, str):
        raise bad("prompt", f"expected a string, got {type(prompt).__name__}")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise bad("messages", "expected a non-empty list of {role, content} objects")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) \
                    or not isinstance(m.get("content"), str):
                raise bad(f"messages[{i}]", "expected an object with string 'role' and 'content'")
        messages = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    completion = d.get("completion")
    if completion is not None and not isinstance(completion, str):
        raise bad("completion", f"expected a string, got {type(completion).__name__}")
    metadata = d.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad("metadata", f"expected an object, got {type(metadata).__name__}")
    return Item(id=str(d["id"]), answer=str(d["answer"]), skills=tuple(skills), prompt=prompt,
                messages=messages, split=str(d.get("split") or "test"), metadata=metadata,
                completion=completion)


def read_text(path: Path) -> str:
    """A data file's text. Data files are UTF-8 (as JSON Lines requires); another encoding is named at its
    first bad byte, by line and byte offset, instead of a UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, data.count(b"\n", 0, e.start) + 1, None,
                        f"not UTF-8 text (byte 0x{data[e.start]:02x} at byte offset {e.start}); skillgap reads data "
                        "files as UTF-8: convert it first, e.g. iconv -f latin1 -t utf-8") from None


def read_jsonl(path: str | Path) -> list[Item]:
    """Read items, failing on the first malformed line with file:line and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(read_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(path, lineno, None, f"invalid JSON ({e.msg} at column {e.colno})") from None
        item = item_from_dict(d, path, lineno)
        if item.id in seen:
            raise DataError(path, lineno, "id", f"{item.id!r} already used on line {seen[item.id]}")
        seen[item.id] = lineno
        items.append(item)
    return items


def write_jsonl(items: Iterable[Item], path: str | Path) -> Path:
    """Write items atomically (a killed writer never leaves half a file behind)."""
    path = Path(path)
    with atomic(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it.to_dict(), ensure_ascii=False) + "\n")
    return path
