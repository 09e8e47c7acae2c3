"""Commands sent to gateways (``selftest``, ``silence_siren``, ``report_status``,
``reload_config``; docs/protocol.md 5.3) and the gateway's answer (4.4), one row per command.

The API writes the row and publishes the command; ingest records the answer by command id
with :func:`record_results`. A result for an unknown id (another hub's command, or one
issued before this table existed) or from another gateway than the command's changes
nothing; a second answer to the same id (a QoS 1 duplicate) is ignored, the first stands.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from hub.db.base import Base
from hub.db.errors import StoreError
from protocols import CommandResult


class CommandState(enum.StrEnum):
    PENDING = "pending"  #: recorded, not yet handed to the broker
    SENT = "sent"  #: the broker accepted it (QoS 1 PUBACK); no answer yet
    UNSENT = "unsent"  #: the broker could not be reached: the gateway never got it
    ANSWERED = "answered"  #: the gateway answered (``ok`` says how it went)


class GatewayCommand(Base):
    __tablename__ = "gateway_commands"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    state: Mapped[str] = mapped_column(String(16), default=CommandState.PENDING.value)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ok: Mapped[bool | None] = mapped_column(Boolean(), default=None)
    detail: Mapped[str] = mapped_column(Text(), default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_gateway_commands_gateway_id_issued_at", "gateway_id", "issued_at"),)


def record_results_in(session: Session, results: Sequence[CommandResult], received_at: dt.datetime) -> int:
    """Record each result on its command (first answer wins); returns how many matched."""
    matched = 0
    for r in results:
        res = session.execute(
            update(GatewayCommand)
            .where(
                GatewayCommand.id == r.command_id,
                GatewayCommand.gateway_id == r.gw,
                GatewayCommand.answered_at.is_(None),
            )
            .values(
                state=CommandState.ANSWERED.value,
                answered_at=received_at,
                ok=r.ok,
                detail=r.detail,
                data=dict(r.data),
            )
        )
        matched += int(getattr(res, "rowcount", 0) or 0)
    return matched


def record_results(
    factory: sessionmaker[Session], results: Sequence[CommandResult], received_at: dt.datetime
) -> int:
    """:func:`record_results_in` in a transaction of its own; StoreError when it fails."""
    try:
        with factory() as s, s.begin():
            return record_results_in(s, results, received_at)
    except SQLAlchemyError as exc:
        raise StoreError(f"command results not recorded: {exc}") from exc
