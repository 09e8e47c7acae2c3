"""Operators acting at once through two hub workers (two API apps, each with its own engine
and connection pool, one database): every lifecycle POST ends in 200 or 409, never 5xx.
On PostgreSQL a resolve racing another resolve used to answer 500 (StaleDataError from the
autoflush inside ``record()``, before the conflict handling)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from hub.alarms.engine.decide import event_signal
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.db.engine import make_engine, make_session_factory
from protocols import Event, EventKind, EventState, new_event_id
from tests.hub.conftest import Hub
from tests.support.http import serve_app

ALARMS = 12
#: operators per alarm, half on each worker
OPERATORS = 4


@pytest.fixture
def workers(hub: Hub) -> Iterator[list[str]]:
    """Base URLs of two API workers on the hub's database."""
    with ExitStack() as stack:
        urls = []
        for _ in range(2):
            engine = make_engine(hub.url)
            stack.callback(engine.dispose)
            app = make_api_app(ApiContext(make_session_factory(engine), hub.clock))
            url = stack.enter_context(serve_app(app))
            # FastAPI builds its routes on the first request; several first requests at once
            # race in that build (pydantic schema generation), which is not what this tests
            assert httpx.get(f"{url}/api/v1/alarms").status_code == 401
            urls.append(url)
        yield urls


def test_many_concurrent_transitions_on_two_workers_end_in_200_or_409(hub: Hub, workers: list[str]) -> None:
    with hub.sessions() as s, s.begin():
        tokens = [
            create_token(s, role, region, f"desk {i}", hub.clock.now())[0]
            for i, (role, region) in enumerate(
                [("operator", "workstation:ws-0001"), ("supervisor", "subdistrict:sd-01")] * (OPERATORS // 2)
            )
        ]
    alarms = []
    for n in range(ALARMS):
        ev = Event(gw="gw-1", seq=n, id=new_event_id(), ts=1, synced=True, sensor=f"smoke-{n}",
                   kind=EventKind.SMOKE, state=EventState.ALARM)  # fmt: skip
        r = hub.alarms.handle(*event_signal(ev, hub.clock.now()))
        assert r.alarm_id
        alarms.append(r.alarm_id)

    answers: list[tuple[str, str, int, str]] = []
    lock = threading.Lock()

    def operator(i: int, alarm: str, action: str, body: dict[str, str], barrier: threading.Barrier) -> None:
        url = workers[i % 2]
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait()
            r = client.post(
                f"/api/v1/alarms/{alarm}/{action}",
                headers={"Authorization": f"Bearer {tokens[i]}", "Idempotency-Key": f"{alarm}-{action}-{i}"},
                json=body,
            )
        error = r.json().get("error", "") if r.status_code != 200 else ""
        with lock:
            answers.append((alarm, action, r.status_code, error))

    for action, body in (("acknowledge", {}), ("resolve", {"outcome": "cooking_smoke"})):
        for alarm in alarms:  # every operator takes the same step of one alarm at the same moment
            barrier = threading.Barrier(OPERATORS)
            threads = [
                threading.Thread(target=operator, args=(i, alarm, action, body, barrier)) for i in range(OPERATORS)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)

    assert len(answers) == 2 * ALARMS * OPERATORS
    assert {(code, error) for _, _, code, error in answers} <= {(200, ""), (409, "already_done")}, answers
    for alarm in alarms:  # exactly one winner per step
        for action in ("acknowledge", "resolve"):
            codes = sorted(c for a, act, c, _ in answers if a == alarm and act == action)
            assert codes == [200] + [409] * (OPERATORS - 1), (alarm, action, codes)
