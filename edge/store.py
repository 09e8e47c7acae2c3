"""The durable buffer: SQLite in WAL mode on the SD card.

* Events (alarm, supervisory, trouble, restores) are committed with ``synchronous=FULL``
  (the WAL is fsynced before ``add_events`` returns): once it returns, a power cut cannot
  lose the event.
* Telemetry arrives in batches (``add_telemetry``) with ``synchronous=NORMAL``: no fsync
  per batch; WAL mode keeps the file consistent after a power cut, and the next FULL
  commit makes those batches durable as well.
* Bounded: at most ``max_telemetry`` telemetry rows; a batch that would exceed it first
  evicts the oldest telemetry (lowest seq). Events are never evicted.
* Deletes (after the hub's Ack) are not fsynced: a delete lost to a power cut only makes
  the gateway resend a message that the hub deduplicates by id.
* ``seq`` is allocated from blocks reserved durably (the first one when the store opens,
  the next when one is used up) in :class:`~edge.seqfile.SeqFile`, which a full disk
  cannot refuse: it never goes back after a crash.
* A write the disk refuses raises :class:`StoreError` naming SQLite's own error ("database
  or disk is full", "disk I/O error") and marks the store unhealthy until a write succeeds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import StoreError
from edge.seqfile import SeqFile

log = logging.getLogger(__name__)

LANE_ALARM, LANE_EVENT, LANE_TELEMETRY = 0, 1, 2
LANE_NAMES = {LANE_ALARM: "alarm", LANE_EVENT: "trouble/supervisory/restore", LANE_TELEMETRY: "telemetry"}
SEQ_BLOCK = 1000
INSERT = "INSERT OR IGNORE INTO outbox (id, lane, channel, seq, created_ms, payload) VALUES (?,?,?,?,?,?)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    lane INTEGER NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane_seq ON outbox (lane, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One uplink message waiting for the hub's Ack."""

    id: str
    lane: int
    channel: str  #: "event" or "telemetry"
    seq: int
    created_ms: int
    payload: bytes


class Store:
    def __init__(self, path: Path, max_telemetry: int = 50_000) -> None:
        self.path = path
        self.max_telemetry = max_telemetry
        self.evicted = 0
        self.commits = 0  #: write transactions (each one is SD-card wear)
        self.healthy = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            # Small pages: every commit writes whole pages to the WAL (and again at the
            # checkpoint), so 1 KiB pages write ~35 % fewer bytes per day than 4 KiB.
            # Takes effect only when the file is created.
            self._db.execute("PRAGMA page_size=1024")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open buffer {path}: {exc}") from exc
        self._sync: str | None = None
        self.seqfile = SeqFile(path.with_suffix(".seq"))
        self._seq = self._reserved = self._load_seq()
        self._reserve()  # at once, while the disk may still take it: see next_seq
        self._telemetry_rows = self._count(LANE_TELEMETRY)

    # --- helpers -------------------------------------------------------------------------

    def _synchronous(self, mode: str) -> None:
        if self._sync != mode:
            self._db.execute(f"PRAGMA synchronous={mode}")
            self._sync = mode

    def _tx(self, mode: str, statements: list[tuple[str, Any]]) -> None:
        try:
            self._synchronous(mode)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    if isinstance(args, list):
                        self._db.executemany(sql, args)
                    else:
                        self._db.execute(sql, args)
                self._db.execute("COMMIT")
                self.commits += 1
            except BaseException:
                # SQLite has already rolled back after SQLITE_FULL / SQLITE_IOERR: a second
                # ROLLBACK would fail and hide the real cause ("no transaction is active")
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self.healthy = False
            raise StoreError(f"buffer {self.path}: write failed: {exc}") from exc
        self.healthy = True

    def _count(self, lane: int) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox WHERE lane=?", (lane,)).fetchone()[0])

    # --- seq -----------------------------------------------------------------------------

    def _load_seq(self) -> int:
        """Everything below the reservation may have been used before a crash: start there."""
        # (buffers written before the seq file existed kept the reservation in `meta`)
        row = self._db.execute("SELECT value FROM meta WHERE key='seq_reserved'").fetchone()
        top = self._db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        return max(self.seqfile.read(), int(row[0]) if row else 0, int(top or 0))

    def _reserve(self) -> bool:
        new = self._seq + SEQ_BLOCK
        try:
            self.seqfile.write(new)
        except StoreError as exc:
            # Keep numbering (an event must still go out). Only a card that refuses even
            # an overwrite in place (read-only, failed) gets here; then seq may repeat if
            # we also crash before it recovers. Retried at the next message.
            self.healthy = False
            log.error("seq block not reserved durably: %s", exc)
            return False
        self._reserved = new
        return True

    def next_seq(self) -> int:
        if self._seq >= self._reserved:
            self._reserve()
        self._seq += 1
        return self._seq

    # --- writes --------------------------------------------------------------------------

    @staticmethod
    def _row(e: Entry) -> tuple[str, int, str, int, int, bytes]:
        return (e.id, e.lane, e.channel, e.seq, e.created_ms, e.payload)

    def add_events(self, entries: list[Entry]) -> None:
        """Durably record events (fsynced before returning). Never evicts, never refuses."""
        self._tx("FULL", [(INSERT, [self._row(e) for e in entries])])

    def add_telemetry(self, entries: list[Entry]) -> int:
        """Write a telemetry batch (no fsync); evict oldest telemetry beyond the bound.

        Returns the number of rows evicted."""
        if not entries:
            return 0
        if len(entries) > self.max_telemetry:
            entries = sorted(entries, key=lambda e: e.seq)[-self.max_telemetry :]
        excess = self._telemetry_rows + len(entries) - self.max_telemetry
        stmts: list[tuple[str, Any]] = []
        if excess > 0:
            stmts.append(
                (
                    "DELETE FROM outbox WHERE n IN (SELECT n FROM outbox WHERE lane=? ORDER BY seq LIMIT ?)",
                    (LANE_TELEMETRY, excess),
                )
            )
        stmts.append((INSERT, [self._row(e) for e in entries]))
        self._tx("NORMAL", stmts)
        self._telemetry_rows = self._count(LANE_TELEMETRY)
        evicted = max(0, excess)
        self.evicted += evicted
        return evicted

    def remove(self, ids: list[str]) -> int:
        """Drop acked entries (not fsynced: see module docstring). Returns rows removed."""
        ids = [i for i in ids if self.contains(i)]  # a read is free; a write transaction is not
        if not ids:
            return 0
        before = self._db.total_changes
        self._tx("NORMAL", [("DELETE FROM outbox WHERE id=?", [(i,) for i in ids])])
        removed = self._db.total_changes - before
        if removed:
            self._telemetry_rows = self._count(LANE_TELEMETRY)
        return removed

    # --- reads ---------------------------------------------------------------------------

    def top(self, lane: int, limit: int, newest_first: bool = False) -> list[Entry]:
        order = "DESC" if newest_first else "ASC"
        try:
            rows = self._db.execute(
                "SELECT id, lane, channel, seq, created_ms, payload FROM outbox "
                f"WHERE lane=? ORDER BY seq {order} LIMIT ?",
                (lane, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"buffer {self.path}: read failed: {exc}") from exc
        return [Entry(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

    def depth(self) -> dict[int, int]:
        rows = self._db.execute("SELECT lane, count(*) FROM outbox GROUP BY lane").fetchall()
        return {int(lane): int(n) for lane, n in rows}

    def oldest_created_ms(self) -> int | None:
        row = self._db.execute("SELECT min(created_ms) FROM outbox").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def contains(self, event_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM outbox WHERE id=?", (event_id,)).fetchone() is not None

    def check(self) -> bool:
        """Self-test: the database answers and a durable write succeeds."""
        try:
            self._db.execute("SELECT count(*) FROM outbox").fetchone()
            self.put_meta("selftest", "ok")
        except (sqlite3.Error, StoreError):
            return False
        return True

    # --- meta ----------------------------------------------------------------------------

    def put_meta(self, key: str, value: Any) -> None:
        self._tx("FULL", [("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))])

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


def read_depth(path: Path) -> dict[str, int]:
    """Depth per lane name, read-only (for ``safehome edge status`` beside a running agent)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT lane, count(*) FROM outbox GROUP BY lane").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read buffer {path}: {exc}") from exc
    return {LANE_NAMES.get(int(lane), str(lane)): int(n) for lane, n in rows}
