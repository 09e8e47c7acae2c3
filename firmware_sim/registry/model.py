"""Pydantic model of the registry file (team brief, "Registry file"), with reference checks.

The hub's ``safehome hub import`` is the authority on import; this model lets the
simulator validate what it generates and read the registry it simulates, without
importing ``hub/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from firmware_sim.errors import RegistryError
from protocols.catalogue import MODEL_KIND
from protocols.ids import ID_PATTERN

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[0-9]{6,15}$")]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]

#: The shared device model ids of sensors and the event kinds they raise, primary kind
#: first: plain data in ``protocols/catalogue.py`` (the hub's importer checks the same table).
Condition = Literal[
    "lives_alone", "dementia", "disabled", "hard_of_hearing", "mobility_impaired",
    "heart_disease", "diabetes", "visually_impaired",
]  # fmt: skip


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class District(_Row):
    id: Id
    name: Name
    timezone: str
    phone: Phone


class Subdistrict(_Row):
    id: Id
    name: Name
    phone: Phone


class Workstation(_Row):
    id: Id
    subdistrict: Id
    name: Name
    phone: Phone
    oncall_phone: Phone
    day_start: HHMM
    day_end: HHMM


class Resident(_Row):
    name: Name
    birth_year: Annotated[int, Field(ge=1900, le=2030)]
    phone: Phone | None = None
    conditions: list[Condition] = []


class Contact(_Row):
    name: Name
    relation: Id
    phone: Phone


class KeyHolder(_Row):
    name: Name
    phone: Phone


class Home(_Row):
    id: Id
    workstation: Id
    address: Name
    residents: Annotated[list[Resident], Field(min_length=1)]
    emergency_contacts: list[Contact] = []
    key_holder: KeyHolder | None = None
    care_notes: Annotated[str, StringConstraints(max_length=500)] = ""


class Gateway(_Row):
    id: Id
    home: Id


class Sensor(_Row):
    id: Id
    gateway: Id
    model: Id
    kind: Id
    location: Id
    interval_s: Annotated[int, Field(ge=10, le=86_400)] = 3600


class Registry(_Row):
    version: Literal[1] = 1
    district: District
    subdistricts: list[Subdistrict]
    workstations: list[Workstation]
    homes: list[Home]
    gateways: list[Gateway]
    sensors: list[Sensor]

    def check_references(self) -> list[str]:
        """Every dangling reference, duplicate id and model/kind mismatch, as messages."""
        errors: list[str] = []

        def unique(table: str, ids: list[str]) -> set[str]:
            seen: set[str] = set()
            for i, v in enumerate(ids):
                if v in seen:
                    errors.append(f"{table}[{i}].id: duplicate id {v!r}")
                seen.add(v)
            return seen

        sds = unique("subdistricts", [s.id for s in self.subdistricts])
        wss = unique("workstations", [w.id for w in self.workstations])
        homes = unique("homes", [h.id for h in self.homes])
        gws = unique("gateways", [g.id for g in self.gateways])
        errors += [
            f"workstations[{i}].subdistrict: unknown subdistrict {w.subdistrict!r}"
            for i, w in enumerate(self.workstations)
            if w.subdistrict not in sds
        ]
        errors += [
            f"homes[{i}].workstation: unknown workstation {h.workstation!r}"
            for i, h in enumerate(self.homes)
            if h.workstation not in wss
        ]
        errors += [
            f"gateways[{i}].home: unknown home {g.home!r}"
            for i, g in enumerate(self.gateways)
            if g.home not in homes
        ]
        keys: set[tuple[str, str]] = set()
        for i, s in enumerate(self.sensors):
            where = f"sensors[{i}]"
            if s.gateway not in gws:
                errors.append(f"{where}.gateway: unknown gateway {s.gateway!r}")
            if (s.gateway, s.id) in keys:
                errors.append(f"{where}.id: duplicate sensor {s.id!r} on gateway {s.gateway!r}")
            keys.add((s.gateway, s.id))
            if s.model not in MODEL_KIND:
                errors.append(f"{where}.model: unknown model {s.model!r} (known: {', '.join(MODEL_KIND)})")
            elif MODEL_KIND[s.model] != s.kind:
                errors.append(
                    f"{where}.kind: model {s.model!r} raises {MODEL_KIND[s.model]!r}, not {s.kind!r}"
                )
        return errors


def parse_registry(data: Any) -> Registry:
    """Validate a registry document (already parsed YAML). Raises :class:`RegistryError`."""
    try:
        reg = Registry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (+{exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise RegistryError(f"{first['msg']}{more}", where) from exc
    errors = reg.check_references()
    if errors:
        more = f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""
        raise RegistryError(errors[0] + more)
    return reg


def load_registry(path: Path) -> Registry:
    try:
        data = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(str(exc), str(path)) from exc
    return parse_registry(data)


def registry_to_yaml(reg: Registry) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        reg.model_dump(mode="json", exclude_none=True),
        Dumper=dumper,
        allow_unicode=True,
        sort_keys=False,
        width=200,
    )
