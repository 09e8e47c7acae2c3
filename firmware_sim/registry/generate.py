"""Generate a synthetic district registry, deterministically from a seed.

Shape follows Pudong's: ~50 homes per village workstation, subdistrict centers of a
few workstations each (at most 36), one gateway per home with a smoke detector, most
with a gas detector and a panic button. Same ``(homes, seed)`` → same registry.
"""

from __future__ import annotations

import math
import random

from firmware_sim.registry import names
from firmware_sim.registry.model import (
    Contact,
    District,
    Gateway,
    Home,
    KeyHolder,
    Registry,
    Resident,
    Sensor,
    Subdistrict,
    Workstation,
)

HOMES_PER_WORKSTATION = 50
WORKSTATIONS_PER_SUBDISTRICT = 4
MAX_SUBDISTRICTS = len(names.SUBDISTRICTS)
CONDITIONS = ("dementia", "disabled", "hard_of_hearing", "mobility_impaired", "heart_disease", "diabetes")
DAY_HOURS = (("08:00", "20:00"), ("08:30", "17:30"), ("07:30", "19:30"))


def _sensors(rng: random.Random, gw: str) -> list[Sensor]:
    out = [Sensor(id="smoke-1", gateway=gw, model="smoke-dry-contact", kind="smoke", location="kitchen")]
    if rng.random() < 0.4:
        out.append(
            Sensor(id="smoke-2", gateway=gw, model="smoke-dry-contact", kind="smoke", location="bedroom")
        )
    if rng.random() < 0.85:
        # analogue %LEL is reported with every telemetry batch: a short expected interval
        out.append(
            Sensor(
                id="gas-1", gateway=gw, model="gas-detector", kind="gas", location="kitchen", interval_s=300
            )
        )
    if rng.random() < 0.9:
        out.append(Sensor(id="panic-1", gateway=gw, model="panic-button", kind="panic", location="bedroom"))
    return out


def _home(rng: random.Random, n: int, ws: str) -> Home:
    residents = [
        Resident(
            name=names.person_name(rng, old=True),
            birth_year=rng.randint(1925, 1960),
            phone=names.mobile(rng) if rng.random() < 0.6 else None,
            conditions=["lives_alone", *sorted(set(rng.sample(CONDITIONS, rng.choice((0, 0, 1, 2)))))],
        )
    ]
    contacts = [
        Contact(
            name=names.person_name(rng, old=False),
            relation=rng.choice(names.RELATIONS),
            phone=names.mobile(rng),
        )
        for _ in range(rng.choice((1, 1, 2)))
    ]
    holder = (
        KeyHolder(name=names.person_name(rng, old=False), phone=names.mobile(rng))
        if rng.random() < 0.7
        else None
    )
    return Home(
        id=f"home-{n:06d}",
        workstation=ws,
        address=names.address(rng),
        residents=residents,
        emergency_contacts=contacts,
        key_holder=holder,
        care_notes=rng.choice(names.CARE_NOTES),
    )


def generate(homes: int, seed: int = 1, district_id: str = "pudong") -> Registry:
    """A valid registry of ``homes`` homes (ids ``home-000001``…, ``gw-000001``…)."""
    if homes < 1:
        raise ValueError("homes must be >= 1")
    rng = random.Random(seed)
    n_ws = math.ceil(homes / HOMES_PER_WORKSTATION)
    n_sd = min(MAX_SUBDISTRICTS, math.ceil(n_ws / WORKSTATIONS_PER_SUBDISTRICT))
    subdistricts = [
        Subdistrict(
            id=f"sd-{i + 1:02d}", name=f"{names.SUBDISTRICTS[i]}街道城运分中心", phone=names.landline(rng)
        )
        for i in range(n_sd)
    ]
    workstations = []
    for i in range(n_ws):
        sd = subdistricts[i % n_sd]
        start, end = rng.choice(DAY_HOURS)
        hood = rng.choice(names.NEIGHBOURHOODS)
        workstations.append(
            Workstation(
                id=f"ws-{i + 1:04d}",
                subdistrict=sd.id,
                name=f"{names.SUBDISTRICTS[i % n_sd]}{hood}第{i // n_sd + 1}居委会工作站",
                phone=names.landline(rng),
                oncall_phone=names.mobile(rng),
                day_start=start,
                day_end=end,
            )
        )
    home_rows, gateways, sensors = [], [], []
    for n in range(1, homes + 1):
        ws = workstations[(n - 1) // HOMES_PER_WORKSTATION]
        home = _home(rng, n, ws.id)
        gw = f"gw-{n:06d}"
        home_rows.append(home)
        gateways.append(Gateway(id=gw, home=home.id))
        sensors += _sensors(rng, gw)
    return Registry(
        district=District(
            id=district_id, name="浦东新区城运中心", timezone="Asia/Shanghai", phone="+862158880000"
        ),
        subdistricts=subdistricts,
        workstations=workstations,
        homes=home_rows,
        gateways=gateways,
        sensors=sensors,
    )
