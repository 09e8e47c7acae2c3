"""Whether one region lies within another: home ⊂ workstation ⊂ subdistrict ⊂ district;
and the one rule for what a caller may hand out (an API key, a console user): nothing
beyond its maker's scopes or region."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from hub.api.errors import BadRegion
from hub.api.problems import invalid_field
from hub.api.tokens import Principal, parse_region
from hub.db.base import Base
from hub.registry.models import Home, Subdistrict, Workstation

#: region kind -> (its table, the column naming the region it lies in, that region's kind);
#: a district is the outermost (not looked up: its id is the end of the chain)
_PARENT: dict[str, tuple[type[Base], str, str]] = {
    "home": (Home, "workstation_id", "workstation"),
    "workstation": (Workstation, "subdistrict_id", "subdistrict"),
    "subdistrict": (Subdistrict, "district_id", "district"),
}


def ancestry(s: Session, kind: str, rid: str) -> list[tuple[str, str]]:
    """``(kind, id)`` of the region and every region above it, innermost first ([] if it
    does not exist or its kind is unknown)."""
    chain: list[tuple[str, str]] = []
    while kind in _PARENT:
        model, parent_column, parent_kind = _PARENT[kind]
        row = s.get(model, rid)
        if row is None:
            return []
        chain.append((kind, rid))
        kind, rid = parent_kind, str(getattr(row, parent_column))
    if kind == "district":
        chain.append(("district", rid))
    return chain


def within(s: Session, kind: str, rid: str, outer_kind: str, outer_id: str) -> bool:
    """Whether region ``kind:rid`` lies within (or is) ``outer_kind:outer_id``."""
    return (outer_kind, outer_id) in ancestry(s, kind, rid)


def grantable(s: Session, maker: Principal, scopes: Iterable[str], region: str, what: str) -> tuple[str, str]:
    """Check what ``maker`` hands out (``what``: "a key", "a supervisor"…): a scope the maker
    lacks is 403 (naming them), a ``region`` (``kind:id``, the body's field) that is not
    within the maker's is 422. Returns the region as ``(kind, id)``."""
    beyond = sorted(set(scopes) - maker.scopes)
    if beyond:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{what} cannot have scopes its maker lacks: {', '.join(beyond)}")
    try:
        kind, rid = parse_region(region)
    except BadRegion as exc:
        raise invalid_field(("body", "region"), str(exc)) from exc
    if not within(s, kind, rid, maker.region_kind, maker.region_id):
        raise invalid_field(("body", "region"), f"no {kind} {rid!r} within {maker.region}")
    return kind, rid
