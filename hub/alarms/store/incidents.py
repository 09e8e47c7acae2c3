"""The ``incidents`` table: one mass event (a storm of one area, see :mod:`hub.alarms.storm`).

Its member alarms point at it (``alarms.incident_id``). ``open_key`` is the area while the
incident is open and NULL once closed; its unique index makes "one open incident per area"
hold across hub workers, as ``alarms.open_key`` does for alarms.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base

ID = String(64)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  #: UUIDv7
    kind: Mapped[str] = mapped_column(String(32), default="mass_event")
    area: Mapped[str] = mapped_column(String(120))  #: "subdistrict:<id>" | "workstation:<id>"
    open_key: Mapped[str | None] = mapped_column(String(120), unique=True, default=None)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)  #: open | closed
    workstation_id: Mapped[str | None] = mapped_column(ID, default=None, index=True)
    subdistrict_id: Mapped[str | None] = mapped_column(ID, default=None, index=True)
    district_id: Mapped[str | None] = mapped_column(ID, default=None, index=True)
    opened_at: Mapped[dt.datetime]
    last_member_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    members: Mapped[int] = mapped_column(default=0)
    #: the count consoles and webhooks were last told, and when
    pushed_members: Mapped[int] = mapped_column(default=0)
    pushed_at: Mapped[dt.datetime]
