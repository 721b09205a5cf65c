"""The teacher: a model backend asked for structured answers, with a disk cache and validated retries.

Every stage that needs a teacher (discovery, labelling, diagnosis, the LLM judge) goes through `ask`:

    teacher = Teacher(ModelConfig(model="gpt-4o-mini", base_url=...))
    replies = teacher.ask(chats, parse=choose_skills, schema=SCHEMA)   # one Reply per chat

- **Cache.** Each call is keyed by a hash of the model identity, the messages (so the prompt
  template), the generation settings and the JSON schema, and stored in SQLite under the skillgap
  cache (`$SKILLGAP_CACHE/teacher.db`). Results are committed chunk by chunk: a re-run costs
  nothing, and an endpoint that dies half-way loses only the chunk in flight. The model is not even
  loaded when every call is cached.
- **Independent samples.** At temperature > 0 a chat that appears several times in one call is
  sampled once per copy: its c-th copy is drawn with seed `seed_for(seed, c)` (the first with `seed`),
  so repeated draws (two Skill-Mix draws of one prompt) are separate samples and separate cache entries,
  never one reply counted twice. At temperature 0 copies share one greedy reply.
- **Validation.** `parse(text)` turns a reply into a value or raises `Invalid(reason)`. A malformed
  reply is retried with the reason fed back to the model (sampled, seeded); after the last try
  the reply is kept with status "invalid": counted and shown, never silently dropped or guessed.
- **Constrained output.** A JSON schema, when given, goes to OpenAI-compatible endpoints as
  `response_format` (json_schema, or llama.cpp's json_object + schema); local models rely on
  validation alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError
from skillgap.items import Message
from skillgap.models import Backend, ModelConfig, load_model, model_identity
from skillgap.models.sources import cache_dir


class Invalid(ValueError):
    """A reply that does not follow the requested format; the message says what is wrong."""


@dataclass(frozen=True)
class Reply:
    value: Any  # what `parse` returned; None when status is "invalid"
    text: str  # the last raw reply
    status: str  # "ok" | "invalid"
    tries: int  # model calls spent (cached ones included)
    error: str = ""  # why the last reply was invalid


class Cache:
    """Content-addressed teacher replies in one SQLite file; safe to share between processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                        "text TEXT NOT NULL, n_tokens INTEGER NOT NULL)")

    def get(self, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self.db.execute(f"SELECT key, text FROM replies WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update(dict(rows.fetchall()))
        return out

    def put(self, model: str, rows: list[tuple[str, str, int]]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
                                [(k, model, t, n) for k, t, n in rows])

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self.db.close()


def default_cache() -> Cache:
    return Cache(cache_dir() / "teacher.db")


def seed_for(*parts: Any) -> int:
    """A seed in [0, 2**31) that depends on every part (stable across runs and machines)."""
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def repeats(chats: Sequence[list[Message]]) -> list[int]:
    """For each chat, how many identical chats come before it: the c-th copy is the c-th sample of that chat."""
    seen: Counter[str] = Counter()
    out = []
    for chat in chats:
        key = json.dumps(chat, sort_keys=True)
        out.append(seen[key])
        seen[key] += 1
    return out


def sample_seeds(chats: Sequence[list[Message]], temperature: float, seed: int) -> list[int]:
    """The seed each chat is drawn with: `seed`, or `seed_for(seed, c)` for a sampled chat's c-th repeat
    (c >= 1), so identical chats are independent samples (greedy copies share one reply)."""
    if temperature <= 0:
        return [seed] * len(chats)
    return [seed if c == 0 else seed_for(seed, c) for c in repeats(chats)]


def call_key(identity: str, chat: list[Message], max_new_tokens: int, temperature: float, seed: int,
             schema: dict[str, Any] | None) -> str:
    blob = json.dumps({"model": identity, "messages": chat, "max_new_tokens": max_new_tokens,
                       "temperature": temperature, "seed": seed, "schema": schema}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def json_in(text: str) -> Any:
    """The first JSON object in a reply (models wrap it in prose or ``` fences); Invalid if none parses."""
    for m in re.finditer(r"\{", text):
        try:
            return json.JSONDecoder().raw_decode(text[m.start():])[0]
        except json.JSONDecodeError:
            continue
    raise Invalid("no JSON object in the reply")


class Teacher:
    """A backend plus cache, retries and a generation budget. The backend loads on the first cache miss."""

    def __init__(self, cfg: ModelConfig, cache: Cache | None = None, max_new_tokens: int = 256, retries: int = 2,
                 temperature: float = 0.0, batch_size: int = 8, backend: Backend | None = None):
        if retries < 0 or max_new_tokens < 1 or batch_size < 1:
            raise ConfigError("--teacher-retries must be at least 0, --teacher-max-new-tokens at least 1.")
        self.cfg = cfg
        self.identity = model_identity(cfg) if backend is None else backend.identity
        self.cache = cache if cache is not None else default_cache()
        self.max_new_tokens, self.retries, self.temperature = max_new_tokens, retries, temperature
        self.batch_size = batch_size
        self._backend = backend
        self.calls = 0  # model calls actually made (cache misses)
        self.hits = 0

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = load_model(self.cfg, batch_size=self.batch_size)
        return self._backend

    def complete(self, chats: list[list[Message]], temperature: float, seed: int = 0,
                 schema: dict[str, Any] | None = None, max_new_tokens: int | None = None,
                 progress: Callable[[int], None] | None = None) -> list[str]:
        """Raw replies, from the cache where possible; misses are generated and committed chunk by chunk.
        A chat repeated at temperature > 0 is sampled once per copy, with its own seed (`sample_seeds`)."""
        budget = max_new_tokens or self.max_new_tokens
        seeds = sample_seeds(chats, temperature, seed)
        keys = [call_key(self.identity, c, budget, temperature, s, schema) for c, s in zip(chats, seeds)]
        have = self.cache.get(keys)
        self.hits += sum(k in have for k in keys)
        first: dict[str, int] = {}  # one generation per key: greedy copies of a chat share it
        for i, k in enumerate(keys):
            if k not in have:
                first.setdefault(k, i)
        missing = list(first.values())
        if progress:
            progress(len(chats) - len(missing))
        step = max(1, self.backend.batch_size) if missing else 1
        kw: dict[str, Any] = {"schema": schema} if schema is not None else {}
        for s in dict.fromkeys(seeds[i] for i in missing):  # a backend call takes one seed
            same = [i for i in missing if seeds[i] == s]
            for j in range(0, len(same), step):
                idx = same[j:j + step]
                gens = self.backend.generate([chats[i] for i in idx], budget, temperature=temperature, seed=s, **kw)
                rows = [(keys[i], g.text, g.n_tokens) for i, g in zip(idx, gens)]
                self.cache.put(self.identity, rows)
                have.update({k: t for k, t, _ in rows})
                self.calls += len(idx)
                if progress:
                    progress(len(idx))
        return [have[k] for k in keys]

    def ask(self, chats: list[list[Message]], parse: Callable[[str], Any] | list[Callable[[str], Any]],
            schema: dict[str, Any] | None = None, max_new_tokens: int | None = None,
            progress: Callable[[int], None] | None = None, seed: int = 0) -> list[Reply]:
        """One validated Reply per chat (`parse`: one for all, or one per chat). Retries feed the reason back and
        sample (seed = try number); `seed` > 0 draws independent first replies (a judge's grading runs)."""
        parsers = parse if isinstance(parse, list) else [parse] * len(chats)
        texts = self.complete(chats, self.temperature, seed, schema, max_new_tokens, progress)
        replies: list[Reply | None] = [None] * len(chats)
        convo = [list(c) for c in chats]
        todo: list[int] = []
        errors: dict[int, str] = {}
        for i, t in enumerate(texts):
            try:
                replies[i] = Reply(parsers[i](t), t, "ok", 1)
            except Invalid as e:
                errors[i] = str(e)
                todo.append(i)
        for attempt in range(1, self.retries + 1):
            if not todo:
                break
            for i in todo:
                convo[i] = convo[i] + [{"role": "assistant", "content": texts[i]},
                                       {"role": "user", "content": f"That reply is not valid: {errors[i]}. "
                                                                   "Answer again, exactly in the requested format."}]
            again = self.complete([convo[i] for i in todo], max(self.temperature, 0.7), 1000 * seed + attempt, schema,
                                  max_new_tokens)
            still: list[int] = []
            for i, t in zip(todo, again):
                texts[i] = t
                try:
                    replies[i] = Reply(parsers[i](t), t, "ok", attempt + 1)
                except Invalid as e:
                    errors[i] = str(e)
                    still.append(i)
            todo = still
        for i in todo:
            replies[i] = Reply(None, texts[i], "invalid", self.retries + 1, errors[i])
        return [r for r in replies if r is not None]
