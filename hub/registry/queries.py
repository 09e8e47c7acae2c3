"""Look-ups other hub features need from the registry (routing an alarm to people)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation


@dataclass(frozen=True)
class Responsibility:
    """The chain responsible for a gateway's home, from the workstation up."""

    gateway: Gateway
    home: Home
    workstation: Workstation
    subdistrict: Subdistrict
    district: District


def responsibility_for(session: Session, gateway_id: str) -> Responsibility | None:
    """The home, workstation, subdistrict center and district of a gateway (None if unknown)."""
    row = session.execute(
        select(Gateway, Home, Workstation, Subdistrict, District)
        .join(Home, Gateway.home_id == Home.id)
        .join(Workstation, Home.workstation_id == Workstation.id)
        .join(Subdistrict, Workstation.subdistrict_id == Subdistrict.id)
        .join(District, Subdistrict.district_id == District.id)
        .where(Gateway.id == gateway_id)
    ).one_or_none()
    return None if row is None else Responsibility(*row)


def sensors_of(session: Session, gateway_id: str) -> list[Sensor]:
    return list(session.scalars(select(Sensor).where(Sensor.gateway_id == gateway_id).order_by(Sensor.id)))
