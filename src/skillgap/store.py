"""The run store: every run and every graded item, in one SQLite file under the runs directory.

Results are committed batch by batch, so a run killed at any point (even `kill -9`) keeps every
finished batch and the same command picks up where it stopped. A run's id is a hash of what
determines its outputs (model, data, seed, limit, generation settings), so "the same command"
finds the same run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError
from skillgap.grade import Grade
from skillgap.items import Record, item_from_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, data TEXT NOT NULL,
    seed INTEGER, n_items INTEGER NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL,
    profile TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL REFERENCES runs(run_id), idx INTEGER NOT NULL, item_id TEXT NOT NULL,
    item TEXT NOT NULL, output TEXT NOT NULL, score REAL, extracted TEXT, explanation TEXT NOT NULL,
    status TEXT NOT NULL, n_tokens INTEGER NOT NULL, session INTEGER NOT NULL, created TEXT NOT NULL, rule TEXT,
    PRIMARY KEY (run_id, item_id));
CREATE TABLE IF NOT EXISTS sessions (
    session INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(run_id),
    started TEXT NOT NULL, already_done INTEGER NOT NULL);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(identity: Any) -> str:
    """SHA-256 of a JSON value (keys sorted): what a run, a training or an adapter is keyed on."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class RunStore:
    """`runs_dir/skillgap.db`. Open one per process; SQLite's WAL lets readers watch a live run."""

    def __init__(self, runs_dir: str | Path):
        self.dir = Path(runs_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "skillgap.db"
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        if "rule" not in {r["name"] for r in self.db.execute("PRAGMA table_info(items)")}:  # a store made before it
            with self.db:
                self.db.execute("ALTER TABLE items ADD COLUMN rule TEXT")

    def close(self) -> None:
        self.db.close()

    def open_run(self, run_id: str, kind: str, model: str, data: str, seed: int | None,
                 n_items: int, config: dict[str, Any]) -> int:
        """Create the run if new, record a session, and return the session number."""
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, kind, model, data, seed, n_items, "running", json.dumps(config), None, _now(), _now()))
            done = len(self.done_ids(run_id))
            cur = self.db.execute("INSERT INTO sessions (run_id, started, already_done) VALUES (?,?,?)",
                                  (run_id, _now(), done))
            return int(cur.lastrowid or 0)

    def done_ids(self, run_id: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT item_id FROM items WHERE run_id=?", (run_id,))}

    def add(self, run_id: str, session: int, rows: Iterable[tuple[int, Record]]) -> None:
        """Commit one batch of graded items (one transaction: all or nothing)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(run_id, idx, r.item.id, json.dumps(r.item.to_dict()), r.output, r.grade.score, r.grade.answer,
                  r.grade.explanation, r.grade.status, r.n_tokens, session, _now(), r.grade.rule) for idx, r in rows])
            self.db.execute("UPDATE runs SET updated=? WHERE run_id=?", (_now(), run_id))

    def records(self, run_id: str) -> list[Record]:
        rows = self.db.execute("SELECT * FROM items WHERE run_id=? ORDER BY idx", (run_id,))
        return [Record(item_from_dict(json.loads(r["item"]), f"{self.path}[{run_id}]"), r["output"],
                       Grade(r["score"], r["extracted"], r["explanation"], r["status"], r["rule"] or ""), r["n_tokens"])
                for r in rows]

    def finish(self, run_id: str, profile: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET status='done', profile=?, updated=? WHERE run_id=?",
                            (json.dumps(profile), _now(), run_id))

    def runs(self) -> list[dict[str, Any]]:
        q = """SELECT r.*, (SELECT COUNT(*) FROM items i WHERE i.run_id = r.run_id) AS n_done
               FROM runs r ORDER BY created DESC, run_id"""
        return [dict(r) for r in self.db.execute(q)]

    def sessions(self, run_id: str) -> list[dict[str, Any]]:
        q = """SELECT s.*, (SELECT COUNT(*) FROM items i WHERE i.session = s.session) AS generated
               FROM sessions s WHERE run_id=? ORDER BY session"""
        return [dict(r) for r in self.db.execute(q, (run_id,))]

    def get(self, ref: str) -> dict[str, Any]:
        """A run by id or unique id prefix."""
        rows = [dict(r) for r in self.db.execute("SELECT * FROM runs WHERE run_id LIKE ? || '%'", (ref,))]
        exact = [r for r in rows if r["run_id"] == ref]
        if exact:
            return exact[0]
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise ConfigError(f"No run {ref!r} in {self.path}; `skillgap runs --runs-dir {self.dir}` lists them.")
        raise ConfigError(f"{ref!r} matches {len(rows)} runs ({', '.join(r['run_id'] for r in rows[:5])}); "
                          "give more of the id.")
