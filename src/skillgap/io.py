"""File I/O every stage shares: one atomic write for files and folders, and JSON read with the file named in errors.

A run is killed at any moment (`kill -9`, a full disk, a preempted node) and resumed later, so nothing is ever
written in place: it is written beside its destination and moved there in one `os.replace`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skillgap.errors import DataError


@contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write a file or build a folder in; it becomes `path` when the block ends, so a
    killed writer never leaves half a file behind. The temporary name carries the process id: concurrent writers of one
    cache entry never share it, and the last to finish wins, as `os.replace` does for files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    _remove(tmp)  # a killed writer's leftover
    yield tmp
    if tmp.is_dir() and path.is_dir():  # os.replace moves a folder only onto an empty one
        shutil.rmtree(path)
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write `obj` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file's value; a missing file or invalid JSON is a `DataError` that names the file (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, None, f"invalid JSON ({e.msg})") from None
