"""The registry file as the simulator generates and reads it: the row models of
``protocols/registry_file.py`` (the same format the hub's ``safehome hub import`` reads),
plus the reference checks a whole file must pass. The hub is the authority on import;
this lets the simulator validate what it writes without importing ``hub/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from firmware_sim.errors import RegistryError
from protocols.registry_file import (
    Contact,
    KeyHolder,
    Resident,
    column,
    message,
)
from protocols.registry_file import DistrictRow as District
from protocols.registry_file import GatewayRow as Gateway
from protocols.registry_file import HomeRow as Home
from protocols.registry_file import SensorRow as Sensor
from protocols.registry_file import SubdistrictRow as Subdistrict
from protocols.registry_file import WorkstationRow as Workstation

__all__ = [
    "Contact",
    "District",
    "Gateway",
    "Home",
    "KeyHolder",
    "Registry",
    "Resident",
    "Sensor",
    "Subdistrict",
    "Workstation",
    "load_registry",
    "parse_registry",
    "registry_to_yaml",
]


class Registry(BaseModel):
    """A whole registry file: every table, in the file's order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1  # FORMAT_VERSION
    district: District
    subdistricts: list[Subdistrict]
    workstations: list[Workstation]
    homes: list[Home]
    gateways: list[Gateway]
    sensors: list[Sensor]

    def check_references(self) -> list[str]:
        """Every dangling reference and duplicate id, as messages (a model/kind mismatch is a
        field error of the sensor's row)."""
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
        return errors


def parse_registry(data: Any) -> Registry:
    """Validate a registry document (already parsed YAML). Raises :class:`RegistryError`."""
    try:
        reg = Registry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        more = f" (+{exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise RegistryError(f"{message(first)}{more}", column(first["loc"]) or "") from exc
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
        reg.model_dump(mode="json"),  # not exclude_none: a workstation without day staff is "none"
        Dumper=dumper,
        allow_unicode=True,
        sort_keys=False,
        width=200,
    )
