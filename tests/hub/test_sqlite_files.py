"""SQLite database files (and their -wal / -shm) are owner-only (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from hub.db.engine import make_engine


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_new_database_files_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: SQLite alone would create 0644 files
    try:
        db = tmp_path / "hub.db"
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x TEXT)"))
            conn.execute(text("INSERT INTO t VALUES ('resident')"))
            files = [db, tmp_path / "hub.db-wal", tmp_path / "hub.db-shm"]
            assert all(f.exists() for f in files)  # WAL mode: all three exist while connected
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    (tmp_path / "hub.db-wal").touch()
    os.chmod(tmp_path / "hub.db-wal", 0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o600 and mode(tmp_path / "hub.db-wal") == 0o600
