"""API tables: bearer tokens (stored as SHA-256 of the secret) and idempotency keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base


class ApiToken(Base):
    """``token_hash`` is the SHA-256 hex of the whole token; the token itself is shown once.

    Tokens carry 256 random bits, so a fast hash is enough (no password stretching needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  #: public id, part of the token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    region_kind: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: None: valid until revoked. An open event stream closes when its token expires too.
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class IdempotencyKey(Base):
    """The stored answer of a POST with an ``Idempotency-Key`` (per token), replayed on repeat."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]

    __table_args__ = (UniqueConstraint("token_id", "key"),)
