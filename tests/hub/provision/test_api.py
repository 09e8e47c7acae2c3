"""The installer's REST steps: walk test (start, progress, finish) and sign-off, scoped to
the token's region (404 outside it), installer/supervisor roles only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.db.events import store_events
from hub.provision import service
from protocols import Event, EventKind, EventState, new_event_id
from tests.hub.conftest import Hub
from tests.support.http import serve_app

BASE = "/api/v1/provision/gateways"


@pytest.fixture
def api(hub: Hub) -> Iterator[tuple[httpx.Client, dict[str, dict[str, str]]]]:
    auth = {}
    with hub.sessions() as s, s.begin():
        service.provision(s, "home-2", None, hub.clock.now())
        for who, role, region in [
            ("inst1", "installer", "workstation:ws-0001"),
            ("inst-sd2", "installer", "subdistrict:sd-02"),
            ("op1", "operator", "workstation:ws-0001"),
        ]:
            token, _ = create_token(s, role, region, f"{who}", hub.clock.now())
            auth[who] = {"Authorization": f"Bearer {token}"}
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock))) as base, httpx.Client(base_url=base) as c:
        yield c, auth


def test_walk_test_and_signoff_through_the_api(hub: Hub, api: tuple[httpx.Client, dict[str, dict[str, str]]]) -> None:
    c, auth = api
    assert c.post(f"{BASE}/gw-1/signoff", headers=auth["inst1"], json={}).status_code == 409
    r = c.post(f"{BASE}/gw-1/walktest", headers=auth["inst1"], json={"timeout_s": 300})
    assert r.status_code == 200, r.text
    assert r.json()["expected"] == ["panic-1", "smoke-1"]
    assert c.get(f"{BASE}/gw-1", headers=auth["inst1"]).json()["test_mode"] is True
    with hub.sessions() as s, s.begin():
        ev = Event(gw="gw-1", seq=1, id=new_event_id(), ts=1, synced=True, sensor="smoke-1",
                   kind=EventKind.SMOKE, state=EventState.ALARM)
        store_events(s, [ev], hub.clock.now())
    progress = c.get(f"{BASE}/gw-1/walktest", headers=auth["inst1"]).json()
    assert progress["missing"] == ["panic-1"] and list(progress["reported"]) == ["smoke-1"]
    done = c.post(f"{BASE}/gw-1/walktest/finish", headers=auth["inst1"]).json()
    assert done["passed"] is False and done["problems"] == ["panic-1: never reported to gw-1"]
    r = c.post(f"{BASE}/gw-1/signoff", headers=auth["inst1"], json={})
    assert r.status_code == 409 and "panic-1: never reported" in r.json()["detail"]

    c.post(f"{BASE}/gw-1/walktest", headers=auth["inst1"], json={})
    with hub.sessions() as s, s.begin():
        store_events(s, [Event(gw="gw-1", seq=2, id=new_event_id(), ts=1, synced=True, sensor=sensor,
                               kind=EventKind.PANIC, state=EventState.ALARM) for sensor in ("smoke-1", "panic-1")],
                     hub.clock.now())
    assert c.post(f"{BASE}/gw-1/walktest/finish", headers=auth["inst1"]).json()["passed"] is True
    r = c.post(f"{BASE}/gw-1/signoff", headers=auth["inst1"], json={"by": "Zhang Wei"})
    assert r.status_code == 200, r.text
    assert r.json()["signed_off_by"] == "Zhang Wei" and r.json()["test_mode"] is False


def test_scope_and_role(api: tuple[httpx.Client, dict[str, dict[str, str]]]) -> None:
    c, auth = api
    assert c.get(f"{BASE}/gw-1").status_code == 401
    assert c.get(f"{BASE}/gw-1", headers=auth["op1"]).status_code == 403  # an operator does not install
    assert c.get(f"{BASE}/gw-2", headers=auth["inst1"]).status_code == 404  # home-2 is ws-0002's
    assert c.get(f"{BASE}/gw-1", headers=auth["inst-sd2"]).status_code == 404  # another subdistrict
    assert c.get(f"{BASE}/gw-3", headers=auth["inst-sd2"]).status_code == 404  # in region, never provisioned
    assert c.post(f"{BASE}/gw-2/walktest", headers=auth["inst1"], json={}).status_code == 404
    assert c.post(f"{BASE}/gw-1/walktest", headers=auth["inst1"], json={"timeout_s": 99999}).status_code == 422


def test_install_state_shows_the_gateways_answer_to_its_config(
    hub: Hub, api: tuple[httpx.Client, dict[str, dict[str, str]]]
) -> None:
    from hub.db.state import GatewayState

    c, auth = api
    config = c.get(f"{BASE}/gw-1", headers=auth["inst1"]).json()["config"]
    assert config["state"] == "pending"  # the gateway never reported
    revision = config["revision"]
    refused = {"revision": revision, "reason": "unknown_sensor", "detail": "sensors not wired here: gas-7"}
    with hub.sessions() as s, s.begin():
        s.add(GatewayState(gateway_id="gw-1", online=True,
                           last_status={"config_revision": revision - 1, "config_error": refused}))
    config = c.get(f"{BASE}/gw-1", headers=auth["inst1"]).json()["config"]
    assert (config["state"], config["revision"], config["reason"]) == ("refused", revision, "unknown_sensor")
    assert config["text"].startswith(f"refused revision {revision}: unknown_sensor (sensors not wired here: gas-7)")
