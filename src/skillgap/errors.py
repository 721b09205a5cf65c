"""Exceptions. Every error a user can cause is a SkillgapError with a message that says what to do.

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from pathlib import Path


class SkillgapError(Exception):
    """Base class: bad input, bad configuration or an unreachable backend."""


class ConfigError(SkillgapError):
    """A flag, name or option that cannot be resolved."""


class DataError(SkillgapError):
    """A malformed data file. Names the file, the line and the field, as an editor would."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class BackendError(SkillgapError):
    """A model backend that cannot be loaded or reached."""


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...]) -> ConfigError:
    """'Unknown suite 'arth'. Did you mean 'arith'? Available: ...' (lm-eval's registry message)."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"Unknown {kind} {name!r}.{hint} Available: {', '.join(sorted(known))}.")
