"""``import --prune``: delete what the register no longer lists, within what it does list.

A parent row present in the file is taken as listed *completely* — when the file has rows
of the child table at all: its children missing from the file are deleted, with
everything below them. Rows under parents the file does not mention, and tables the file
leaves empty, are untouched, so a partial file (the district row is always required)
prunes only its own part of the tree.
Deletion runs children first, in the import's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from hub.registry.models import Gateway, Home, Sensor, Subdistrict, Workstation
from hub.registry.schema import Register

CHUNK = 500


def _doomed(
    pairs: Iterable[tuple[Any, str]], listed: set[Any], parents_listed: set[str], parents_doomed: set[str]
) -> set[Any]:
    return {
        key
        for key, parent in pairs
        if parent in parents_doomed or (parent in parents_listed and key not in listed)
    }


def _rows(session: Session, *columns: Any) -> list[tuple[Any, Any]]:
    return [(a, b) for a, b in session.execute(select(*columns))]


def prune(session: Session, register: Register) -> dict[str, int]:
    """Delete rows of the file's part of the tree that the file no longer lists; return
    how many per table."""
    file_subs = {s.id for s in register.subdistricts}
    file_ws = {w.id for w in register.workstations}
    file_homes = {h.id for h in register.homes}
    file_gws = {g.id for g in register.gateways}
    file_sensors = {(s.gateway, s.id) for s in register.sensors}

    def scope(parents: set[str], children: set[Any]) -> set[str]:
        # A table the file leaves empty is not being handed over: prune nothing under it.
        return parents if children else set()

    subs = _doomed(
        _rows(session, Subdistrict.id, Subdistrict.district_id),
        file_subs,
        scope({register.district.id}, file_subs),
        set(),
    )
    ws = _doomed(
        _rows(session, Workstation.id, Workstation.subdistrict_id), file_ws, scope(file_subs, file_ws), subs
    )
    homes = _doomed(_rows(session, Home.id, Home.workstation_id), file_homes, scope(file_ws, file_homes), ws)
    gws = _doomed(_rows(session, Gateway.id, Gateway.home_id), file_gws, scope(file_homes, file_gws), homes)
    sensors = _doomed(
        (((g, s), g) for g, s in _rows(session, Sensor.gateway_id, Sensor.id)),
        file_sensors,
        scope(file_gws, file_sensors),
        gws,
    )

    ordered = sorted(sensors)
    for i in range(0, len(ordered), CHUNK):
        session.execute(
            delete(Sensor).where(tuple_(Sensor.gateway_id, Sensor.id).in_(ordered[i : i + CHUNK]))
        )
    for model, ids in ((Gateway, gws), (Home, homes), (Workstation, ws), (Subdistrict, subs)):
        id_list = sorted(ids)
        for i in range(0, len(id_list), CHUNK):
            session.execute(delete(model).where(model.id.in_(id_list[i : i + CHUNK])))
    return {
        "subdistricts": len(subs),
        "workstations": len(ws),
        "homes": len(homes),
        "gateways": len(gws),
        "sensors": len(sensors),
    }
