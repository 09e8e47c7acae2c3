"""The resource routes on a real database (SQLite and PostgreSQL): homes and residents,
gateways and sensors, readings (SQL store), workstations and centers; region scoping (404
outside the region), personal data only with ``residents:read``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_key, create_token
from hub.api.users import create_user, login
from hub.audit.models import AuditEntry
from hub.db.state import Condition, GatewayState, SensorState
from hub.registry.models import Home, Sensor, Workstation
from hub.timeseries import Point
from hub.timeseries.sql import SqlTimeSeriesStore
from tests.hub.conftest import DAY, NIGHT, Hub, raise_alarm
from tests.support.http import serve_app


@dataclass
class Api:
    hub: Hub
    client: httpx.Client
    tokens: dict[str, str]

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)

    def put(self, who: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.put(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, json=body)


def _seed_fleet(hub: Hub) -> None:
    seen = DAY - dt.timedelta(seconds=20)
    with hub.sessions() as s, s.begin():
        home = s.get(Home, "home-1")
        assert home is not None
        home.floor, home.door = "3", "301"
        home.residents = [
            {"name": "王1", "birth_year": 1938, "phone": "+86 21 5800 0000", "conditions": ["dementia"], "language": "zh"}
        ]
        home.key_holder = {"name": "李阿姨", "phone": "+86 137 0000 0000"}
        home.care_notes = "hard of hearing"
        s.add(Sensor(gateway_id="gw-1", id="gas-1", model="gas-detector", kind="gas", location="kitchen"))
        status = {
            "v": "1.0", "gw": "gw-1", "state": "online", "reason": "heartbeat", "ts": 1, "synced": True,
            "heartbeat_s": 30, "fw": "safehome-edge 0.1.0", "config_revision": 3, "buffer_depth": 7,
            "alarms_pending": 1, "oldest_unacked_s": 12.5, "uptime_s": 86400,
            "sensors": [{"id": "smoke-1", "model": "smoke-dry-contact", "ok": True},
                        {"id": "panic-1", "model": "panic-button", "ok": False}],
        }
        s.add(GatewayState(gateway_id="gw-1", online=True, last_seen_at=seen, last_status=status,
                           status_at=seen, clock_offset_s=0.4))
        s.add(SensorState(gateway_id="gw-1", sensor_id="smoke-1", last_seen_at=seen))
        s.add(Condition(gateway_id="gw-1", sensor_id="panic-1", kind="sensor_silent", opened_at=seen, detail=""))
        s.add(GatewayState(gateway_id="gw-2", online=False, last_seen_at=seen, status_at=seen))
        s.add(Condition(gateway_id="gw-2", sensor_id=None, kind="gateway_offline", opened_at=seen, detail=""))


@pytest.fixture
def api(hub: Hub) -> Iterator[Api]:
    _seed_fleet(hub)
    tokens = {}
    with hub.sessions() as s, s.begin():
        for who, role, region in [
            ("ws1", "operator", "workstation:ws-0001"),
            ("ws1-viewer", "viewer", "workstation:ws-0001"),
            ("sd1", "supervisor", "subdistrict:sd-01"),
            ("district", "viewer", "district:pudong"),
        ]:
            tokens[who], _ = create_token(s, role, region, f"{who} desk", hub.clock.now())
        for who, scopes, region in [
            ("family", "registry:read readings:read residents:read", "home:home-1"),
            ("alarms-only", "alarms:read", "district:pudong"),
        ]:
            tokens[who], _ = create_key(s, scopes, region, who, hub.clock.now(), None, "test")
        create_user(s, "admin", ADMIN_PASSWORD, "district_admin", "district:pudong", hub.clock.now())
    ts = SqlTimeSeriesStore(hub.engine)
    ctx = ApiContext(hub.sessions, hub.clock, timeseries=ts)
    tokens["admin"] = login(ctx, "admin", ADMIN_PASSWORD, "127.0.0.1").access_token
    with serve_app(make_api_app(ctx)) as base, httpx.Client(base_url=base) as client:
        yield Api(hub, client, tokens)


ADMIN_PASSWORD = "correct horse battery staple 42"


def audit_rows(hub: Hub, action: str) -> list[tuple[str, str, str]]:
    with hub.sessions() as s:
        q = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return [(e.actor, e.target, e.source) for e in s.scalars(q)]


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def test_homes_are_listed_by_region(api: Api) -> None:
    assert [h["id"] for h in ok(api.get("ws1", "/api/v1/homes"))["items"]] == ["home-1"]
    assert [h["id"] for h in ok(api.get("sd1", "/api/v1/homes"))["items"]] == ["home-1", "home-2"]
    page = ok(api.get("district", "/api/v1/homes", params={"limit": 2}))
    assert [h["id"] for h in page["items"]] == ["home-1", "home-2"] and page["next_cursor"] == "home-2"
    rest = ok(api.get("district", "/api/v1/homes", params={"cursor": page["next_cursor"]}))
    assert [h["id"] for h in rest["items"]] == ["home-3"] and rest["next_cursor"] is None
    first = ok(api.get("ws1", "/api/v1/homes"))["items"][0]
    assert first == {"id": "home-1", "workstation_id": "ws-0001", "address": "路1号", "floor": "3", "door": "301",
                     "gateways": ["gw-1"]}
    # a filter naming another region narrows to nothing
    assert ok(api.get("ws1", "/api/v1/homes", params={"workstation_id": "ws-0002"}))["items"] == []


def test_a_home_outside_the_region_is_404(api: Api) -> None:
    r = api.get("ws1", "/api/v1/homes/home-2")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert api.get("ws1", "/api/v1/homes/nope").status_code == 404
    assert api.get("sd1", "/api/v1/homes/home-2").status_code == 200


def test_personal_data_only_with_residents_read(api: Api) -> None:
    card = ok(api.get("ws1-viewer", "/api/v1/homes/home-1"))
    assert card["personal_data"] is False
    assert card["residents"] is None and card["emergency_contacts"] is None
    assert card["key_holder"] is None and card["care_notes"] is None
    assert "王1" not in str(card) and "+86-fam1" not in str(card)
    assert (card["address"], card["floor"], card["door"]) == ("路1号", "3", "301")
    assert card["workstation"]["id"] == "ws-0001"
    assert card["gateways"] == [{"id": "gw-1", "online": True, "last_seen_at": card["gateways"][0]["last_seen_at"]}]

    card = ok(api.get("ws1", "/api/v1/homes/home-1"))
    assert card["personal_data"] is True
    [resident] = card["residents"]
    assert resident["name"] == "王1" and resident["age"] == DAY.year - 1938
    assert resident["conditions"] == ["dementia"] and resident["language"] == "zh"
    assert card["emergency_contacts"] == [{"name": "daughter", "relation": "daughter", "phone": "+86-fam1"}]
    assert card["key_holder"] == {"name": "李阿姨", "phone": "+86 137 0000 0000"}
    assert card["care_notes"] == "hard of hearing"


def test_an_alarms_detail_carries_the_home_card(api: Api) -> None:
    alarm_id = raise_alarm(api.hub, "gw-1")
    detail = ok(api.get("ws1", f"/api/v1/alarms/{alarm_id}"))
    assert detail["home"]["id"] == "home-1" and detail["home"]["residents"][0]["name"] == "王1"
    viewer = ok(api.get("ws1-viewer", f"/api/v1/alarms/{alarm_id}"))
    assert viewer["home"]["personal_data"] is False and viewer["home"]["residents"] is None


def test_gateway_detail_reports_what_the_hub_knows(api: Api) -> None:
    at = DAY - dt.timedelta(hours=2)
    SqlTimeSeriesStore(api.hub.engine).write(
        [
            Point("gw-1", "gas-1", "battery_v", DAY - dt.timedelta(hours=30), 3.3),  # too old to count
            Point("gw-1", "smoke-1", "battery_v", DAY - dt.timedelta(hours=5), 3.0),
            Point("gw-1", "smoke-1", "battery_v", at, 2.7),
        ]
    )
    g = ok(api.get("ws1", "/api/v1/gateways/gw-1"))
    assert g["connectivity"] == "online" and g["online"] is True
    assert g["agent_version"] == "safehome-edge 0.1.0" and g["config_revision"] == 3
    assert g["buffer"] == {"depth": 7, "alarms_pending": 1, "oldest_unacked_s": 12.5}
    assert g["clock"] == {"synced": True, "offset_s": 0.4, "suspect": False}
    sensors = {x["id"]: x for x in g["sensors"]}
    assert set(sensors) == {"gas-1", "panic-1", "smoke-1"}
    assert sensors["smoke-1"]["ok"] is True and sensors["smoke-1"]["last_seen_at"] is not None
    assert sensors["panic-1"]["ok"] is False and sensors["panic-1"]["silent"] is True
    assert sensors["gas-1"]["ok"] is None and sensors["gas-1"]["last_seen_at"] is None
    assert (sensors["smoke-1"]["battery_v"], sensors["smoke-1"]["battery_at"]) == (2.7, at.isoformat().replace("+00:00", "Z"))
    assert sensors["gas-1"]["battery_v"] is None and sensors["panic-1"]["battery_at"] is None
    assert [(t["source"], t["kind"], t["sensor_id"]) for t in g["troubles"]] == [
        ("condition", "sensor_silent", "panic-1")
    ]
    g2 = ok(api.get("sd1", "/api/v1/gateways/gw-2"))
    assert g2["connectivity"] == "offline" and g2["agent_version"] is None
    assert ok(api.get("district", "/api/v1/gateways/gw-3"))["connectivity"] == "unknown"


def test_gateways_are_listed_and_filtered_by_region(api: Api) -> None:
    assert [g["id"] for g in ok(api.get("ws1", "/api/v1/gateways"))["items"]] == ["gw-1"]
    items = ok(api.get("district", "/api/v1/gateways"))["items"]
    assert [(g["id"], g["connectivity"], g["open_troubles"]) for g in items] == [
        ("gw-1", "online", 1), ("gw-2", "offline", 1), ("gw-3", "unknown", 0)
    ]
    offline = ok(api.get("district", "/api/v1/gateways", params={"connectivity": "offline"}))["items"]
    assert [g["id"] for g in offline] == ["gw-2"]
    assert api.get("ws1", "/api/v1/gateways/gw-2").status_code == 404
    assert api.get("ws1", "/api/v1/gateways", params={"connectivity": "sleepy"}).status_code == 422


def _write_gas(api: Api) -> None:
    start = DAY - dt.timedelta(hours=1)
    points = [Point("gw-1", "gas-1", "gas_lel", start + dt.timedelta(minutes=i), float(i % 10)) for i in range(60)]
    points += [Point("gw-2", "gas-1", "gas_lel", start, 50.0)]  # another region's
    SqlTimeSeriesStore(api.hub.engine).write(points)


def test_readings_of_a_sensor_raw_and_downsampled(api: Api) -> None:
    _write_gas(api)
    path = "/api/v1/gateways/gw-1/sensors/gas-1/readings"
    since = (DAY - dt.timedelta(hours=1)).isoformat()
    raw = ok(api.get("ws1-viewer", path, params={"metric": "gas_lel", "since": since}))
    [series] = raw["series"]
    assert len(series["points"]) == 60 and series["truncated"] is False
    assert series["points"][0][1] == 0.0 and series["points"][-1][1] == 9.0
    down = ok(api.get("ws1-viewer", path, params={"metric": "gas_lel", "since": since, "every": 600}))
    [series] = down["series"]
    assert down["every_s"] == 600
    assert [v for _, v in series["points"]] == [4.5] * 6  # 0..9 per 10-minute bucket


def test_readings_of_a_home_one_series_per_sensor(api: Api) -> None:
    _write_gas(api)
    since = (DAY - dt.timedelta(days=1)).isoformat()
    r = ok(api.get("ws1", "/api/v1/homes/home-1/readings", params={"metric": "gas_lel", "since": since, "every": 3600}))
    assert [(x["sensor_id"], len(x["points"])) for x in r["series"]] == [("gas-1", 1), ("panic-1", 0), ("smoke-1", 0)]
    only_gas = ok(api.get("ws1", "/api/v1/homes/home-1/readings",
                          params={"metric": "gas_lel", "since": since, "every": 3600, "kind": "gas"}))
    assert [x["sensor_id"] for x in only_gas["series"]] == ["gas-1"]
    assert api.get("ws1", "/api/v1/homes/home-2/readings", params={"metric": "gas_lel", "since": since}).status_code == 404


def test_readings_refuse_bad_ranges_naming_the_field(api: Api) -> None:
    path = "/api/v1/gateways/gw-1/sensors/gas-1/readings"

    def field_of(params: dict[str, Any]) -> str:
        r = api.get("ws1", path, params={"metric": "gas_lel", **params})
        assert r.status_code == 422, r.text
        return str(r.json()["errors"][0]["field"])

    assert field_of({"since": "2026-03-01T00:00:00"}) == "query.since"  # no timezone
    assert field_of({"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}) == "query.every"
    assert field_of({"since": "2026-03-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}) == "query.until"
    assert field_of({"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T00:00:00Z", "every": 1}) == "query.every"
    assert field_of({"since": "2026-03-01T00:00:00Z", "metric": "Gas LEL"}) == "query.metric"
    assert field_of({"since": "0001-01-01T00:00:00+01:00"}) == "query.since"  # not even in UTC's range
    assert field_of({"since": "1969-12-31T00:00:00Z", "until": "1970-01-01T00:00:00Z"}) == "query.since"
    r = api.get("ws1", "/api/v1/gateways/gw-1/sensors/nope/readings", params={"metric": "x", "since": "2026-03-01T00:00:00Z"})
    assert r.status_code == 404


def test_workstations_and_centers_by_region(api: Api) -> None:
    ws = ok(api.get("sd1", "/api/v1/workstations"))
    assert [(w["id"], w["hours"], w["staffed_now"]) for w in ws] == [("ws-0001", "day", True), ("ws-0002", "day", True)]
    assert ok(api.get("ws1", "/api/v1/workstations/ws-0001"))["oncall_phone"] == "+86-oncall1"
    assert api.get("ws1", "/api/v1/workstations/ws-0003").status_code == 404
    centers = ok(api.get("ws1", "/api/v1/centers"))
    assert [(c["kind"], c["id"]) for c in centers] == [("district", "pudong"), ("subdistrict", "sd-01")]
    all_centers = ok(api.get("district", "/api/v1/centers"))
    assert [c["id"] for c in all_centers] == ["pudong", "sd-01", "sd-02"]
    api.hub.clock.set(NIGHT)
    assert ok(api.get("ws1", "/api/v1/workstations/ws-0001"))["staffed_now"] is False


def test_only_an_admin_may_change_duty_hours(api: Api) -> None:
    r = api.put("sd1", "/api/v1/workstations/ws-0001/duty", {"day_start": "07:00", "day_end": "19:00"})
    assert r.status_code == 403
    # the scope is checked before the region (403 for any id: nothing to learn about ws-0003)
    assert api.put("sd1", "/api/v1/workstations/ws-0003/duty", {"day_start": None, "day_end": None}).status_code == 403
    r = api.put("admin", "/api/v1/workstations/ws-0001/duty", {"day_start": "07:00", "day_end": None})
    assert r.status_code == 422 and "day_start" in r.text
    assert ok(api.get("sd1", "/api/v1/workstations/ws-0001"))["day_start"] == "08:00"
    assert audit_rows(api.hub, "workstation.duty_changed") == []

    w = ok(api.put("admin", "/api/v1/workstations/ws-0001/duty", {"day_start": "22:00", "day_end": "06:00"}))
    assert (w["day_start"], w["day_end"], w["hours"], w["staffed_now"]) == ("22:00", "06:00", "overnight", False)
    with api.hub.sessions() as s:
        row = s.get(Workstation, "ws-0001")
        assert row is not None and (row.day_start, row.day_end) == (dt.time(22), dt.time(6))
    w = ok(api.put("admin", "/api/v1/workstations/ws-0001/duty", {"day_start": None, "day_end": None}))
    assert w["hours"] == "none" and w["staffed_now"] is False
    [(actor, target, source), _] = audit_rows(api.hub, "workstation.duty_changed")
    assert "admin" in actor and target == "workstation:ws-0001" and source == "127.0.0.1"


def test_every_read_of_a_residents_record_is_audited(api: Api) -> None:
    ok(api.get("ws1-viewer", "/api/v1/homes/home-1"))  # no personal data: nothing to record
    ok(api.get("ws1", "/api/v1/homes"))  # the list carries none either
    assert audit_rows(api.hub, "resident.read") == []
    ok(api.get("ws1", "/api/v1/homes/home-1"))
    ok(api.get("family", "/api/v1/homes/home-1"))
    alarm_id = raise_alarm(api.hub, "gw-1")
    ok(api.get("ws1", f"/api/v1/alarms/{alarm_id}"))
    rows = audit_rows(api.hub, "resident.read")
    assert [(t, src) for _, t, src in rows] == [("home:home-1", "127.0.0.1")] * 3
    assert "ws1 desk" in rows[0][0] and "family" in rows[1][0]


def test_scopes_and_a_key_limited_to_one_home(api: Api) -> None:
    for path in ("/api/v1/homes", "/api/v1/gateways", "/api/v1/workstations", "/api/v1/centers"):
        assert api.get("alarms-only", path).status_code == 403, path
    r = api.get("alarms-only", "/api/v1/homes/home-1/readings", params={"metric": "gas_lel", "since": DAY.isoformat()})
    assert r.status_code == 403
    assert [h["id"] for h in ok(api.get("family", "/api/v1/homes"))["items"]] == ["home-1"]
    assert ok(api.get("family", "/api/v1/homes/home-1"))["personal_data"] is True
    assert api.get("family", "/api/v1/homes/home-2").status_code == 404
    assert [g["id"] for g in ok(api.get("family", "/api/v1/gateways"))["items"]] == ["gw-1"]
    assert api.get("family", "/api/v1/gateways/gw-2").status_code == 404
    assert [w["id"] for w in ok(api.get("family", "/api/v1/workstations"))] == ["ws-0001"]
