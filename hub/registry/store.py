"""Apply a validated register to the database (upsert, one transaction) and export it.

Import is idempotent: rows are matched by id, new ones inserted, changed ones updated,
identical ones left alone. Rows in the database that the file does not mention are kept
(and counted as ``kept``): removing a home or gateway is a decision for a person, not a
side effect of a partial file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from hub.db.base import Base
from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation
from hub.registry.schema import FORMAT_VERSION, NO_HOURS, KnownIds, Register

#: Rows per bulk statement.
BATCH = 1000


@dataclass
class TableReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  #: in the database, not in the file
    deleted: int = 0  #: removed by ``--prune``


@dataclass
class ImportReport:
    tables: dict[str, TableReport] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(t.created + t.updated + t.deleted for t in self.tables.values())

    def lines(self) -> list[str]:
        return [
            f"{name:13} created {t.created:>7}  updated {t.updated:>7}  unchanged {t.unchanged:>7}  "
            f"kept (not in file) {t.kept:>7}  deleted {t.deleted:>7}"
            for name, t in self.tables.items()
        ]


def known_ids(session: Session) -> KnownIds:
    """Ids already stored, for validating references of a partial file."""
    return KnownIds(
        subdistricts=frozenset(session.scalars(select(Subdistrict.id))),
        workstations=frozenset(session.scalars(select(Workstation.id))),
        homes=frozenset(session.scalars(select(Home.id))),
        gateways=frozenset(session.scalars(select(Gateway.id))),
    )


def _rows(register: Register) -> list[tuple[str, type[Base], list[dict[str, Any]]]]:
    d = register.district
    return [
        ("district", District, [{"id": d.id, "name": d.name, "timezone": d.timezone, "phone": d.phone}]),
        (
            "subdistricts",
            Subdistrict,
            [
                {"id": s.id, "district_id": d.id, "name": s.name, "phone": s.phone}
                for s in register.subdistricts
            ],
        ),
        (
            "workstations",
            Workstation,
            [
                {
                    "id": w.id,
                    "subdistrict_id": w.subdistrict,
                    "name": w.name,
                    "phone": w.phone,
                    "oncall_phone": w.oncall_phone,
                    "day_start": w.day_start,
                    "day_end": w.day_end,
                }
                for w in register.workstations
            ],
        ),
        (
            "homes",
            Home,
            [
                {
                    "id": h.id,
                    "workstation_id": h.workstation,
                    "address": h.address,
                    "floor": h.floor,
                    "door": h.door,
                    "residents": [r.model_dump(exclude_defaults=True) for r in h.residents],
                    "emergency_contacts": [c.model_dump(exclude_defaults=True) for c in h.emergency_contacts],
                    "key_holder": h.key_holder.model_dump() if h.key_holder else None,
                    "care_notes": h.care_notes,
                }
                for h in register.homes
            ],
        ),
        ("gateways", Gateway, [{"id": g.id, "home_id": g.home} for g in register.gateways]),
        (
            "sensors",
            Sensor,
            [
                {
                    "gateway_id": s.gateway,
                    "id": s.id,
                    "model": s.model,
                    "kind": s.kind,
                    "location": s.location,
                    "interval_s": s.interval_s,
                }
                for s in register.sensors
            ],
        ),
    ]


def _key(model: type[Base], row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["gateway_id"], row["id"]) if model is Sensor else (row["id"],)


def _existing(
    session: Session, model: type[Base], columns: Sequence[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    table = model.__table__
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in session.execute(select(*(table.c[c] for c in columns))).mappings():
        out[_key(model, dict(row))] = dict(row)
    return out


def apply(session: Session, register: Register) -> ImportReport:
    """Upsert ``register`` in the caller's transaction (parents before children)."""
    report = ImportReport()
    for name, model, rows in _rows(register):
        columns = list(rows[0]) if rows else []
        existing = _existing(session, model, columns) if rows else {}
        new, changed = [], []
        for row in rows:
            old = existing.pop(_key(model, row), None)
            if old is None:
                new.append(row)
            elif old != row:
                changed.append(row)
        unchanged = len(rows) - len(new) - len(changed)
        kept = len(existing) if rows else int(session.scalar(select(func.count()).select_from(model)) or 0)
        report.tables[name] = TableReport(len(new), len(changed), unchanged, kept)
        for start in range(0, len(new), BATCH):
            session.execute(insert(model), new[start : start + BATCH])
        for start in range(0, len(changed), BATCH):
            session.execute(update(model), changed[start : start + BATCH])
    return report


def _hhmm(t: dt.time | None) -> str:
    return t.strftime("%H:%M") if t is not None else NO_HOURS


def export(session: Session, district_id: str | None = None) -> dict[str, Any]:
    """The register of one district (the only one, if not given) in the file format."""
    districts = list(session.scalars(select(District).order_by(District.id)))
    if district_id is not None:
        districts = [d for d in districts if d.id == district_id]
    if len(districts) != 1:
        names = ", ".join(d.id for d in districts) or "none"
        raise LookupError(f"expected exactly one district to export, found: {names}")
    d = districts[0]
    in_district = Subdistrict.district_id == d.id
    subs = list(session.scalars(select(Subdistrict).where(in_district).order_by(Subdistrict.id)))
    # Joins, not IN (…) lists: a district has more homes than a statement may have parameters.
    wss = list(
        session.scalars(select(Workstation).join(Subdistrict).where(in_district).order_by(Workstation.id))
    )
    homes = list(
        session.scalars(select(Home).join(Workstation).join(Subdistrict).where(in_district).order_by(Home.id))
    )
    gws = list(
        session.scalars(
            select(Gateway)
            .join(Home)
            .join(Workstation)
            .join(Subdistrict)
            .where(in_district)
            .order_by(Gateway.id)
        )
    )
    sensors = list(
        session.scalars(
            select(Sensor)
            .join(Gateway)
            .join(Home)
            .join(Workstation)
            .join(Subdistrict)
            .where(in_district)
            .order_by(Sensor.gateway_id, Sensor.id)
        )
    )
    return {
        "version": FORMAT_VERSION,
        "district": {"id": d.id, "name": d.name, "timezone": d.timezone, "phone": d.phone},
        "subdistricts": [{"id": s.id, "name": s.name, "phone": s.phone} for s in subs],
        "workstations": [
            {
                "id": w.id,
                "subdistrict": w.subdistrict_id,
                "name": w.name,
                "phone": w.phone,
                "oncall_phone": w.oncall_phone,
                "day_start": _hhmm(w.day_start),
                "day_end": _hhmm(w.day_end),
            }
            for w in wss
        ],
        "homes": [
            {
                "id": h.id,
                "workstation": h.workstation_id,
                "address": h.address,
                **({"floor": h.floor} if h.floor else {}),
                **({"door": h.door} if h.door else {}),
                "residents": h.residents,
                "emergency_contacts": h.emergency_contacts,
                "key_holder": h.key_holder,
                "care_notes": h.care_notes,
            }
            for h in homes
        ],
        "gateways": [{"id": g.id, "home": g.home_id} for g in gws],
        "sensors": [
            {
                "id": s.id,
                "gateway": s.gateway_id,
                "model": s.model,
                "kind": s.kind,
                "location": s.location,
                "interval_s": s.interval_s,
            }
            for s in sensors
        ],
    }
