"""A small, valid register (the file format of ``safehome hub import``) for tests, and a
helper that loads it into a database through the real import path."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.registry.files import dump_yaml
from hub.registry.models import District, Gateway, Home, Sensor, Subdistrict, Workstation
from hub.registry.service import import_register
from hub.registry.store import ImportReport


def sample_register(homes: int = 3, prefix: str = "") -> dict[str, Any]:
    """District ``pudong`` with 2 subdistricts, 2 workstations, ``homes`` homes, each with one
    gateway ``{prefix}gw-00000N`` and sensors smoke-1, gas-1, panic-1."""
    data: dict[str, Any] = {
        "version": 1,
        "district": {
            "id": "pudong",
            "name": "浦东新区城运中心",
            "timezone": "Asia/Shanghai",
            "phone": "+86 21 5000 0000",
        },
        "subdistricts": [
            {"id": "sd-01", "name": "花木街道城运分中心", "phone": "+86 21 5000 0101"},
            {"id": "sd-02", "name": "陆家嘴街道城运分中心", "phone": "+86 21 5000 0102"},
        ],
        "workstations": [
            {
                "id": "ws-0001",
                "subdistrict": "sd-01",
                "name": "联洋居委会工作站",
                "phone": "+86 21 5000 1001",
                "oncall_phone": "+86 139 0000 1001",
                "day_start": "08:00",
                "day_end": "20:00",
            },
            {
                "id": "ws-0002",
                "subdistrict": "sd-02",
                "name": "梅园居委会工作站",
                "phone": "+86 21 5000 1002",
                "oncall_phone": "+86 139 0000 1002",
                "day_start": "08:30",
                "day_end": "17:30",
            },
        ],
        "homes": [],
        "gateways": [],
        "sensors": [],
    }
    for i in range(1, homes + 1):
        home, gw = f"home-{i:06d}", f"{prefix}gw-{i:06d}"
        data["homes"].append(
            {
                "id": home,
                "workstation": "ws-0001" if i % 2 else "ws-0002",
                "address": f"芳甸路{i}弄{i % 7 + 1}号{i % 5 + 1}01室",
                "residents": [
                    {
                        "name": f"王{i}",
                        "birth_year": 1930 + i % 20,
                        "phone": "+86 21 5800 0000",
                        "conditions": ["lives_alone"],
                    }
                ],
                "emergency_contacts": [
                    {"name": f"王小{i}", "relation": "daughter", "phone": "+86 138 0000 0000"}
                ],
                "key_holder": {"name": "李阿姨", "phone": "+86 137 0000 0000"},
                "care_notes": "hard of hearing" if i % 2 else "",
            }
        )
        data["gateways"].append({"id": gw, "home": home})
        for sensor, model, kind, location in (
            ("smoke-1", "smoke-dry-contact", "smoke", "kitchen"),
            ("gas-1", "gas-detector", "gas", "kitchen"),
            ("panic-1", "panic-button", "panic", "bedroom"),
        ):
            data["sensors"].append(
                {
                    "id": sensor,
                    "gateway": gw,
                    "model": model,
                    "kind": kind,
                    "location": location,
                    "interval_s": 3600,
                }
            )
    return copy.deepcopy(data)


def seed_registry(
    factory: sessionmaker[Session], tmp_path: Path, data: dict[str, Any] | None = None
) -> ImportReport:
    """Import ``data`` (default: :func:`sample_register`) through the YAML import path."""
    path = tmp_path / "register-seed.yaml"
    path.write_text(dump_yaml(data if data is not None else sample_register()), encoding="utf-8")
    return import_register(factory, [path])


def seed_small_district(sessions: sessionmaker[Session]) -> None:
    """One district, two subdistricts, three workstations (08:00-20:00), one home, gateway,
    smoke detector and panic button each (``home-1``/``gw-1`` …): the alarm tests' registry."""
    with sessions() as s, s.begin():
        s.add(District(id="pudong", name="浦东新区城运中心", timezone="Asia/Shanghai", phone="+86-d"))
        s.add(Subdistrict(id="sd-01", district_id="pudong", name="sd1", phone="+86-sd1"))
        s.add(Subdistrict(id="sd-02", district_id="pudong", name="sd2", phone="+86-sd2"))
        s.flush()
        for n, sd in ((1, "sd-01"), (2, "sd-01"), (3, "sd-02")):
            s.add(
                Workstation(
                    id=f"ws-000{n}",
                    subdistrict_id=sd,
                    name=f"ws{n}",
                    phone=f"+86-ws{n}",
                    oncall_phone=f"+86-oncall{n}",
                    day_start=dt.time(8),
                    day_end=dt.time(20),
                )
            )
        s.flush()
        for n in (1, 2, 3):
            s.add(
                Home(
                    id=f"home-{n}",
                    workstation_id=f"ws-000{n}",
                    address=f"路{n}号",
                    residents=[{"name": "resident", "birth_year": 1938}],
                    emergency_contacts=[{"name": "daughter", "relation": "daughter", "phone": f"+86-fam{n}"}],
                )
            )
        s.flush()
        for n in (1, 2, 3):
            s.add(Gateway(id=f"gw-{n}", home_id=f"home-{n}"))
        s.flush()
        for n in (1, 2, 3):
            s.add(
                Sensor(
                    gateway_id=f"gw-{n}",
                    id="smoke-1",
                    model="smoke-dry-contact",
                    kind="smoke",
                    location="kitchen",
                )
            )
            s.add(
                Sensor(
                    gateway_id=f"gw-{n}", id="panic-1", model="panic-button", kind="panic", location="bedroom"
                )
            )
