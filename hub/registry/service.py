"""Import a register file into the database: read, validate against file + database, upsert."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.registry.errors import RegistryError
from hub.registry.files import load
from hub.registry.prune import prune as prune_missing
from hub.registry.schema import validate
from hub.registry.store import ImportReport, apply, known_ids


def import_register(
    factory: sessionmaker[Session], paths: Sequence[Path], *, dry_run: bool = False, prune: bool = False
) -> ImportReport:
    """Import all or nothing, in one transaction; raises :class:`RegistryValidationError`
    listing every error, :class:`RegistryFileError` for unreadable files."""
    tables, version, read_errors = load(paths)
    with factory() as session:
        try:
            register = validate(tables, version, known_ids(session), read_errors)
            report = apply(session, register)
            if prune:
                for table, n in prune_missing(session, register).items():
                    report.tables[table].deleted = n
                    report.tables[table].kept -= n
            if dry_run:
                session.rollback()
            else:
                session.commit()
            return report
        except SQLAlchemyError as exc:
            session.rollback()
            raise RegistryError(f"writing the register failed, nothing was imported: {exc}") from exc
