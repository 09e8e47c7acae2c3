"""Durable state of a fleet process (SQLite): per-gateway sequence and unacked messages.

A restarted fleet resumes every gateway's sequence and resends what the hub never acked,
with the original ids. Writes are batched (one transaction per :meth:`flush`); alarm-class
messages are flushed at once by the fleet.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import protocols as p
from firmware_sim.errors import FleetError
from firmware_sim.fleet.gateway import Pending

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway (gw TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, gw TEXT NOT NULL, channel TEXT NOT NULL,
                                    payload BLOB NOT NULL, alarm INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS pending_gw ON pending (gw);
"""


class FleetStore:
    def __init__(self, path: Path | str) -> None:
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise FleetError(f"cannot open fleet state {path}: {exc}") from exc
        self._seq: dict[str, int] = {}
        self._put: dict[str, tuple[str, Pending]] = {}
        self._del: set[str] = set()

    def load(self) -> tuple[dict[str, int], dict[str, list[Pending]]]:
        seqs = dict(self.db.execute("SELECT gw, seq FROM gateway").fetchall())
        pend: dict[str, list[Pending]] = {}
        for mid, gw, channel, payload, alarm in self.db.execute(
            "SELECT id, gw, channel, payload, alarm FROM pending"
        ):
            pend.setdefault(gw, []).append(Pending(mid, p.Channel(channel), bytes(payload), bool(alarm)))
        return seqs, pend

    def set_seq(self, gw: str, seq: int) -> None:
        self._seq[gw] = seq

    def put(self, gw: str, pend: Pending) -> None:
        self._put[pend.id] = (gw, pend)
        self._del.discard(pend.id)

    def delete(self, mid: str) -> None:
        if self._put.pop(mid, None) is None:
            self._del.add(mid)

    def flush(self) -> None:
        if not (self._seq or self._put or self._del):
            return
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT INTO gateway (gw, seq) VALUES (?, ?) ON CONFLICT(gw) DO UPDATE SET seq=excluded.seq",
                    list(self._seq.items()),
                )
                self.db.executemany(
                    "INSERT OR REPLACE INTO pending (id, gw, channel, payload, alarm) VALUES (?, ?, ?, ?, ?)",
                    [(x.id, gw, x.channel.value, x.payload, int(x.alarm)) for gw, x in self._put.values()],
                )
                self.db.executemany("DELETE FROM pending WHERE id = ?", [(m,) for m in self._del])
        except sqlite3.Error as exc:
            raise FleetError(f"cannot write fleet state: {exc}") from exc
        self._seq.clear()
        self._put.clear()
        self._del.clear()

    def close(self) -> None:
        self.flush()
        self.db.close()
