"""Whether one region lies within another (a key or a user made by someone may not reach
beyond its maker's region): home ⊂ workstation ⊂ subdistrict ⊂ district."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hub.registry.models import Home, Subdistrict, Workstation


def ancestry(s: Session, kind: str, rid: str) -> list[tuple[str, str]]:
    """``(kind, id)`` of the region and every region above it, innermost first ([] if it
    does not exist)."""
    chain: list[tuple[str, str]] = []
    if kind == "home":
        home = s.get(Home, rid)
        if home is None:
            return []
        chain.append(("home", rid))
        kind, rid = "workstation", home.workstation_id
    if kind == "workstation":
        ws = s.get(Workstation, rid)
        if ws is None:
            return []
        chain.append(("workstation", rid))
        kind, rid = "subdistrict", ws.subdistrict_id
    if kind == "subdistrict":
        sd = s.get(Subdistrict, rid)
        if sd is None:
            return []
        chain.append(("subdistrict", rid))
        kind, rid = "district", sd.district_id
    if kind == "district":
        chain.append(("district", rid))
    return chain


def within(s: Session, kind: str, rid: str, outer_kind: str, outer_id: str) -> bool:
    """Whether region ``kind:rid`` lies within (or is) ``outer_kind:outer_id``."""
    return (outer_kind, outer_id) in ancestry(s, kind, rid)
