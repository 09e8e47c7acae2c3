"""The console stream over real HTTP (SSE), scoped by the token's region."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from hub.alarms.event_schema import AlarmEvent
from hub.alarms.lifecycle import Action
from hub.alarms.store.models import AlarmTransition
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token, revoke_token
from hub.notify.console import ConsoleBus
from safehome.testing.mosquitto import free_port
from safehome.testing.poll import wait_for
from tests.hub.conftest import Hub, act, raise_alarm
from tests.support.http import serve_app


def read_events(lines: Iterator[str], n: int) -> list[tuple[int, str, dict[str, Any]]]:
    """The next ``n`` SSE events as (id, event, data)."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if fields:
                data = json.loads(fields["data"])
                AlarmEvent.model_validate(data)  # the documented shape
                out.append((int(fields["id"]), fields["event"], data))
                fields = {}
                if len(out) == n:
                    return out
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    raise AssertionError(f"stream ended after {out}")


def test_stream_sends_every_line_of_the_callers_region_in_order(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "viewer", "subdistrict:sd-01", "sd1 wall", hub.clock.now())
    app = make_api_app(ApiContext(hub.sessions, hub.clock, bus=ConsoleBus()))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/api/v1/alarms/stream").status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        with c.stream("GET", "/api/v1/alarms/stream", headers=headers) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            other = raise_alarm(hub, "gw-3")  # sd-02: never sent to sd-01
            mine = raise_alarm(hub, "gw-1")
            act(hub, other, Action.ACKNOWLEDGE)
            act(hub, mine, Action.ACKNOWLEDGE)
            act(hub, mine, Action.DISPATCH, responder="volunteer Li")
            got = read_events(lines, 3)
    assert [(e, d["alarm_id"], d["seq"], d["state"]) for _, e, d in got] == [
        ("alarm.raised", mine, 1, "raised"),
        ("alarm.acknowledged", mine, 2, "acknowledged"),
        ("alarm.dispatched", mine, 3, "dispatched"),
    ]
    ids = [i for i, _, _ in got]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert got[2][2]["responder"] == "volunteer Li" and got[1][2]["actor"] == "op-1"


def test_a_bad_last_event_id_is_refused_with_the_reason(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "viewer", "subdistrict:sd-01", "wall", hub.clock.now())
    app = make_api_app(ApiContext(hub.sessions, hub.clock, bus=ConsoleBus()))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        r = c.get("/api/v1/alarms/stream", headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "x7"})
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["detail"]


def test_a_client_resumes_on_another_worker_after_its_worker_died_without_a_gap(hub: Hub) -> None:
    """Two API workers on one database; the client's worker is killed mid-stream while
    alarms go on changing; reconnecting to the other with Last-Event-ID gets exactly the
    lines it had not seen, in order, none twice."""
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "viewer", "district:pudong", "district wall", hub.clock.now())
    headers = {"Authorization": f"Bearer {token}"}
    a = raise_alarm(hub, "gw-1")
    seen: list[tuple[int, str, dict[str, Any]]] = []
    port = free_port()
    first = uvicorn.Server(
        uvicorn.Config(
            make_api_app(ApiContext(hub.sessions, hub.clock, bus=ConsoleBus())),
            host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        )
    )
    thread = threading.Thread(target=first.run, daemon=True)
    thread.start()
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock, bus=ConsoleBus()))) as second:
        wait_for(lambda: first.started or not thread.is_alive(), within=10, what="the first worker started")
        assert thread.is_alive(), "first worker did not start"
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        with c.stream("GET", "/api/v1/alarms/stream", headers=headers) as r:
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            b = raise_alarm(hub, "gw-2")
            act(hub, a, Action.ACKNOWLEDGE)
            seen += read_events(lines, 2)
            # the worker goes away under the open stream (no waiting for its connections)
            first.should_exit = first.force_exit = True
            thread.join(15)
            assert not thread.is_alive()
            # meanwhile the cases go on (on any worker)
            act(hub, b, Action.ACKNOWLEDGE)
            act(hub, a, Action.DISPATCH, responder="volunteer Li")
            c3 = raise_alarm(hub, "gw-3")
            act(hub, a, Action.ARRIVE)
            with contextlib.suppress(httpx.HTTPError):
                for _ in lines:  # whatever the dying worker still flushed counts as seen
                    pass
        c.close()
        last = seen[-1][0]
        with httpx.Client(base_url=second, timeout=30) as c2, c2.stream(
            "GET", "/api/v1/alarms/stream", headers={**headers, "Last-Event-ID": str(last)}
        ) as r2:
            lines2 = r2.iter_lines()
            assert next(lines2) == ": connected"
            rest = read_events(lines2, 4)
    got = [(d["alarm_id"], e) for _, e, d in seen + rest]
    assert got == [
        (b, "alarm.raised"),
        (a, "alarm.acknowledged"),
        (b, "alarm.acknowledged"),
        (a, "alarm.dispatched"),
        (c3, "alarm.raised"),
        (a, "alarm.on_site"),
    ]
    with hub.sessions() as s:
        history = s.scalars(select(AlarmTransition.id).where(AlarmTransition.id > seen[0][0] - 1)).all()
    assert [i for i, _, _ in seen + rest] == sorted(history)  # every line, once, in id order
    assert [d["seq"] for _, _, d in seen + rest if d["alarm_id"] == a] == [2, 3, 4]


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_an_open_stream_closes_when_its_token_is_revoked_or_expires(hub: Hub, how: str) -> None:
    with hub.sessions() as s, s.begin():
        token, p = create_token(
            s, "viewer", "subdistrict:sd-01", "wall", hub.clock.now(), hub.clock.now() + dt.timedelta(hours=8)
        )
    bus = ConsoleBus()
    app = make_api_app(ApiContext(hub.sessions, hub.clock, bus=bus, token_recheck_s=0.1))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        headers = {"Authorization": f"Bearer {token}"}
        with c.stream("GET", "/api/v1/alarms/stream", headers=headers) as r:
            lines = (line for line in r.iter_lines() if line)
            assert next(lines) == ": connected"
            raise_alarm(hub, "gw-1")
            assert next(lines).startswith("id: ")  # still open and delivering
            assert next(lines) == "event: alarm.raised"
            if how == "revoked":
                with hub.sessions() as s, s.begin():
                    assert revoke_token(s, p.token_id, hub.clock.now())
            else:
                hub.clock.advance(hours=8)
            rest = list(lines)  # ends: the server closed the stream
        assert rest[-2:] == ["event: closed", f'data: {{"reason":"token_{how}"}}']
        assert c.get("/api/v1/me", headers=headers).status_code == 401
