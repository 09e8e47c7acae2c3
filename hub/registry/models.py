"""Registry tables: district → subdistrict (24 h center) → workstation → home → gateway → sensor.

Ids are the district's own (protocol id alphabet), so that a re-import of the same register
updates rows in place. Personal data of residents lives only in ``homes``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db.base import Base

ID = String(64)
PHONE = String(32)


class District(Base):
    """A district operations center (区城运中心). Its phone is the last escalation step."""

    __tablename__ = "districts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(PHONE)

    subdistricts: Mapped[list[Subdistrict]] = relationship(back_populates="district")


class Subdistrict(Base):
    """A subdistrict / town center (街镇城运分中心), staffed 24 h."""

    __tablename__ = "subdistricts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(PHONE)

    district: Mapped[District] = relationship(back_populates="subdistricts")
    workstations: Mapped[list[Workstation]] = relationship(back_populates="subdistrict")


class Workstation(Base):
    """A village / neighbourhood workstation (居村工作站): staffed from ``day_start`` to
    ``day_end`` (local time of the district), on call at ``oncall_phone`` outside those hours.
    ``day_end`` earlier than ``day_start`` means the day shift crosses midnight, equal means
    staffed 24 h, both NULL no day staff (on call around the clock): ``hub/registry/duty.py``."""

    __tablename__ = "workstations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subdistrict_id: Mapped[str] = mapped_column(
        ForeignKey("subdistricts.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(PHONE)
    oncall_phone: Mapped[str] = mapped_column(PHONE)
    day_start: Mapped[dt.time | None] = mapped_column(Time())
    day_end: Mapped[dt.time | None] = mapped_column(Time())

    subdistrict: Mapped[Subdistrict] = relationship(back_populates="workstations")
    homes: Mapped[list[Home]] = relationship(back_populates="workstation")


class Home(Base):
    """A resident's home. ``residents`` / ``emergency_contacts`` are lists of objects and
    ``key_holder`` an object (JSON), exactly as in the registry file (a resident:
    ``name, birth_year?, phone?, conditions?, language?, notes?``)."""

    __tablename__ = "homes"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    workstation_id: Mapped[str] = mapped_column(
        ForeignKey("workstations.id", ondelete="RESTRICT"), index=True
    )
    address: Mapped[str] = mapped_column(String(500))
    #: Where in the building (the responder's last metres): "3", "B1"; "" when not given.
    floor: Mapped[str] = mapped_column(String(16), default="", server_default="")
    door: Mapped[str] = mapped_column(String(32), default="", server_default="")
    residents: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    emergency_contacts: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    key_holder: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    care_notes: Mapped[str] = mapped_column(Text(), default="")

    workstation: Mapped[Workstation] = relationship(back_populates="homes")
    gateways: Mapped[list[Gateway]] = relationship(back_populates="home")


class Gateway(Base):
    """A home's gateway. Its MQTT credentials are the broker's business (``hub/broker``)."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="RESTRICT"), index=True)

    home: Mapped[Home] = relationship(back_populates="gateways")
    sensors: Mapped[list[Sensor]] = relationship(back_populates="gateway")


class Sensor(Base):
    """A sensor of a gateway; ids are unique within their gateway only.
    ``interval_s`` is the longest silence expected from it (supervision deadline)."""

    __tablename__ = "sensors"

    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    model: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(ID)
    location: Mapped[str] = mapped_column(String(200), default="")
    interval_s: Mapped[int] = mapped_column(default=3600)

    gateway: Mapped[Gateway] = relationship(back_populates="sensors")
