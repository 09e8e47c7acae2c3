"""The registry file format (version 1): one row model per table, shared by the hub's
importer (``hub/registry/schema.py`` validates whole files and references with it) and the
simulator (``firmware_sim/registry``, which generates and reads registry files). It lives
here because both sides must read the same file the same way and neither may import the
other (docs/architecture.md); docs/registry.md describes the format.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from protocols.catalogue import MODEL_KINDS
from protocols.ids import ID_PATTERN

FORMAT_VERSION = 1
#: Tables in dependency order (parents first), as in the file.
TABLES = ("district", "subdistricts", "workstations", "homes", "gateways", "sensors")

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{2,30}$"
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
#: A workstation's hours when it has no day staff (on call around the clock).
NO_HOURS = "none"


def _hh_mm(value: object) -> object:
    """``"08:00"`` → time; ``none`` (or YAML null) → None, no day staff. YAML 1.1 reads an
    unquoted ``8:30`` as the sexagesimal integer 510; accept such integers below 24 h as
    minutes, so that ``day_start: 8:30`` works."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() == NO_HOURS):
        return None
    if isinstance(value, int) and 0 <= value < 24 * 60:
        return dt.time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            hours, minutes = value.strip().split(":")
            if len(minutes) != 2:
                raise ValueError
            return dt.time(int(hours), int(minutes))
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day HH:MM") from None
    return value


def _show_hh_mm(t: dt.time | None) -> str:
    return t.strftime("%H:%M") if t is not None else NO_HOURS


#: A time of day as the file writes it: ``"08:00"``, or ``none`` for no day staff.
TimeOfDay = Annotated[
    dt.time | None, BeforeValidator(_hh_mm), PlainSerializer(_show_hh_mm, return_type=str, when_used="json")
]


class Row(BaseModel):
    # Unknown columns are errors: a misspelt column would otherwise drop data silently.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DistrictRow(Row):
    id: Id
    name: Name
    timezone: str
    phone: Phone

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)") from None
        return value


class SubdistrictRow(Row):
    id: Id
    name: Name
    phone: Phone


class WorkstationRow(Row):
    id: Id
    subdistrict: Id
    name: Name
    phone: Phone
    oncall_phone: Phone
    # hub/registry/duty.py: start < end by day, end < start across midnight, equal = 24 h,
    # both none = no day staff. Required even when none: a forgotten column is not a choice.
    day_start: TimeOfDay
    day_end: TimeOfDay

    @field_validator("day_end")
    @classmethod
    def _both_or_neither(cls, value: dt.time | None, info: ValidationInfo) -> dt.time | None:
        if "day_start" not in info.data:  # day_start has its own error
            return value
        start = info.data["day_start"]
        if (start is None) != (value is None):
            raise ValueError(
                f"day_start is {_show(start)} but day_end is {_show(value)}: give both times, "
                f"or {NO_HOURS!r} for both (no day staff)"
            )
        return value


def _show(t: dt.time | None) -> str:
    return t.strftime("%H:%M") if t is not None else repr(NO_HOURS)


#: A preferred language as a BCP 47 tag (``zh``, ``zh-Hans``, ``yue``, ``en``).
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"


class Resident(Row):
    name: Name
    birth_year: Annotated[int, Field(ge=1880, le=2100)] | None = None
    phone: Phone | None = None
    conditions: list[Id] = []
    language: Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)] | None = None
    notes: Annotated[str, StringConstraints(max_length=500)] = ""


class Contact(Row):
    name: Name
    relation: Annotated[str, StringConstraints(max_length=50)] = ""
    phone: Phone


class KeyHolder(Row):
    name: Name
    phone: Phone


def _text_of_number(value: object) -> object:
    """YAML reads an unquoted ``floor: 3`` as an integer; a floor or door is text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Floor = Annotated[
    str, BeforeValidator(_text_of_number), StringConstraints(max_length=16, strip_whitespace=True)
]
Door = Annotated[
    str, BeforeValidator(_text_of_number), StringConstraints(max_length=32, strip_whitespace=True)
]


class HomeRow(Row):
    id: Id
    workstation: Id
    address: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    floor: Floor = ""
    door: Door = ""
    residents: Annotated[list[Resident], Field(min_length=1, max_length=20)]
    emergency_contacts: Annotated[list[Contact], Field(max_length=20)] = []
    key_holder: KeyHolder | None = None
    care_notes: Annotated[str, StringConstraints(max_length=2000)] = ""


class GatewayRow(Row):
    id: Id
    home: Id


class SensorRow(Row):
    id: Id
    gateway: Id
    model: Id
    kind: Id
    location: Annotated[str, StringConstraints(max_length=200)] = ""
    # Same limits as protocols.SensorConfig.interval_s: the gateway must accept it.
    interval_s: Annotated[int, Field(ge=10, le=86_400)] = 3600

    # The device catalogue (protocols/catalogue.py, from devices/definitions.py): a model the
    # gateway cannot drive, or a kind it never raises, would be a sensor nobody hears.
    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_KINDS:
            raise ValueError(f"unknown device model {value!r} (known: {', '.join(sorted(MODEL_KINDS))})")
        return value

    @field_validator("kind")
    @classmethod
    def _kind_of_model(cls, value: str, info: ValidationInfo) -> str:
        model = info.data.get("model")
        if model is None:  # the model has its own error
            return value
        kinds = MODEL_KINDS[model]
        if value not in kinds:
            raise ValueError(f"model {model!r} raises {', '.join(map(repr, kinds))}, not {value!r}")
        return value


ROW_MODELS: dict[str, type[Row]] = {
    "district": DistrictRow,
    "subdistricts": SubdistrictRow,
    "workstations": WorkstationRow,
    "homes": HomeRow,
    "gateways": GatewayRow,
    "sensors": SensorRow,
}


def column(loc: tuple[int | str, ...]) -> str | None:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown column"
    if err["type"] == "missing":
        return "required, missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern == ID_PATTERN:
            msg = "not an id: 1-64 characters of a-z 0-9 - _, starting with a letter or digit"
        elif pattern == PHONE_PATTERN:
            msg = "not a phone number: digits, spaces and '-', optional leading '+'"
        elif pattern == LANGUAGE_PATTERN:
            msg = "not a language tag (BCP 47, e.g. zh, zh-Hans, yue, en)"
        return f"{msg} (got {err['input']!r})"
    return msg
