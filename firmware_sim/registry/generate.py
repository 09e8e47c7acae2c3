"""Generate a synthetic district registry, deterministically from a seed.

Shape follows Pudong's: ~50 homes per village workstation, subdistrict centers of a
few workstations each (at most 36), one gateway per home with a smoke detector, most
with a gas detector and a panic button, in two kit generations (see :func:`_sensors`).
Same ``(homes, seed)`` → same registry.
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


#: Share of homes with the current kit rather than the first rollout's (see :func:`_sensors`).
CURRENT_KIT_SHARE = 0.35
#: Share of panic buttons that are wall-mounted with a lid tamper rather than a pendant.
WALL_BUTTON_SHARE = 0.3


def _sensors(rng: random.Random, kit: random.Random, gw: str) -> list[Sensor]:
    """The sensors of one gateway. Two kit generations are installed in the district:

    - the first rollout's kit (most homes): a mains smoke detector with a dry-contact relay
      and no UPS HAT, the cheap kit that got the programme going. A dry contact shows
      smoke only (its low battery chirps unseen), and the gateway dies with the mains:
      the hub sees a power cut there only as a silent gateway;
    - the current kit (``CURRENT_KIT_SHARE`` of homes: installs and replacements since):
      the supervised 4-wire smoke detector (its trouble relay reports battery_low, its base
      tamper loop a removal) and a UPS HAT on the gateway (``power-supervisor``, always
      ``power-1``: it reports mains_lost and its backup cell's battery_low, and keeps the
      gateway, hence the alarms, going through a power cut). Both came in together with
      the supervised kit, so a home has both or neither.

    Independently of the kit, ``WALL_BUTTON_SHARE`` of panic buttons are wall-mounted by the
    toilet, where old people fall and a pendant is often not worn, and have a lid tamper
    switch (``panic-button-tamper``); the rest are pendants (``panic-button``).

    ``rng`` draws what the first generator drew (same draws, same order), ``kit`` the kit
    choices, so a seed keeps its homes, people and sensor ids and only the models change.
    """
    current = kit.random() < CURRENT_KIT_SHARE
    smoke = "smoke-relay-supervised" if current else "smoke-dry-contact"
    out = [Sensor(id="smoke-1", gateway=gw, model=smoke, kind="smoke", location="kitchen")]
    if rng.random() < 0.4:
        out.append(Sensor(id="smoke-2", gateway=gw, model=smoke, kind="smoke", location="bedroom"))
    if rng.random() < 0.85:
        # analogue %LEL is reported with every telemetry batch: a short expected interval
        out.append(
            Sensor(
                id="gas-1", gateway=gw, model="gas-detector", kind="gas", location="kitchen", interval_s=300
            )
        )
    wall = kit.random() < WALL_BUTTON_SHARE
    if rng.random() < 0.9:
        out.append(
            Sensor(id="panic-1", gateway=gw, model="panic-button-tamper", kind="panic", location="bathroom")
            if wall
            else Sensor(id="panic-1", gateway=gw, model="panic-button", kind="panic", location="bedroom")
        )
    if current:
        # the backup cell's voltage is in every telemetry batch, like the gas level
        out.append(
            Sensor(
                id="power-1",
                gateway=gw,
                model="power-supervisor",
                kind="mains_lost",
                location="gateway",
                interval_s=300,
            )
        )
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
    kit = random.Random(f"{seed}/kit")
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
        sensors += _sensors(rng, kit, gw)
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
