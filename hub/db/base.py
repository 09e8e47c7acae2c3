"""The one declarative ``Base`` of the hub: every table of every hub feature hangs off it.

Constraint names follow a fixed convention so that Alembic migrations can name (and later
drop or alter) them identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase

from hub.db.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base. ``Mapped[dt.datetime]`` is always a timezone-aware UTC column,
    ``Mapped[dict[str, Any]]`` / ``Mapped[list[Any]]`` are JSON, ``Mapped[int]`` is 64-bit."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        list[dict[str, Any]]: JSON(),
        # INTEGER on SQLite so that an integer primary key is the (auto-incrementing) rowid.
        int: BigInteger().with_variant(Integer(), "sqlite"),
    }
