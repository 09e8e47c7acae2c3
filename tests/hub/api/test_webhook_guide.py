"""docs/api.md "Task: follow a case by webhook" runs: its receiver code, taken from the doc,
is fed the real signed deliveries of a case (out of order and repeated, as at-least-once
delivery may bring them) and applies each line once, in ``seq`` order, filling a gap from
the alarm's history through the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from hub.alarms.service import AlarmService
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.notify.channel import RetryPolicy
from hub.notify.outbox import OutboxWorker
from hub.notify.webhook import WebhookChannel
from hub.sealing import dev_box
from tests.hub.conftest import Hub, alarm_settings, raise_alarm
from tests.support.http import LOOPBACK_TARGETS, Received, http_receiver, serve_app

API_MD = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def guide_receiver() -> str:
    """The Python block of the guide that defines ``receive``."""
    text = API_MD.read_text()
    guide = text[text.index("### Task: follow a case by webhook") :]
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    return next(str(b) for b in blocks if "def receive(" in b)


async def deliver(hub: Hub, service: AlarmService, done: Callable[[], bool]) -> None:
    """Run the real outbox and webhook channel until ``done()``."""
    async with httpx.AsyncClient(timeout=5) as http:
        worker = OutboxWorker(
            hub.sessions, WebhookChannel(http, directory=service.webhooks.target, targets=LOOPBACK_TARGETS), "w1",
            lambda: dt.datetime.now(dt.UTC), RetryPolicy(max_attempts=2, base_s=0.01, jitter=False),
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not done() and time.monotonic() < deadline:
            await worker.run_once()
            await asyncio.sleep(0.005)
    await service.http.aclose()


def test_the_guides_receiver_applies_each_line_once_in_order(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "supervisor", "subdistrict:sd-01", "city brain", hub.clock.now())
    auth = {"Authorization": f"Bearer {token}"}
    service = AlarmService(alarm_settings(), hub.sessions, "guide", clock=hub.clock, secret_box=dev_box())
    app = make_api_app(ApiContext(hub.sessions, hub.clock, secret_box=dev_box(), webhook_targets=LOOPBACK_TARGETS))
    with http_receiver() as receiver, serve_app(app) as base:
        api = httpx.Client(base_url=f"{base}/api/v1", headers=auth)
        made = api.post(
            "/webhooks", json={"url": receiver.url + "/hook", "region": "subdistrict:sd-01"}
        ).json()
        alarm = raise_alarm(hub, "gw-1")
        for n, (step, body) in enumerate([("acknowledge", {}), ("dispatch", {"responder": "volunteer Li"})]):
            r = api.post(f"/alarms/{alarm}/{step}", json=body, headers={"Idempotency-Key": f"k{n}"})
            assert r.status_code == 200, r.text
        api.post(f"/webhooks/{made['id']}/ping")
        asyncio.run(deliver(hub, service, lambda: len(receiver.requests) >= 4))
        got = receiver.wait_for(4)

        ns: dict[str, Any] = {"__name__": "guide"}
        exec(compile(guide_receiver(), str(API_MD), "exec"), ns)
        ns["SECRET"], ns["hub"] = made["secret"], api
        applied: list[tuple[str, int, str]] = []
        ns["apply"] = lambda alarm_id, seq, state: applied.append((alarm_id, seq, state))

        def post(req: Received) -> int:
            headers = {k.title(): v for k, v in req.headers.items()}
            status: int = ns["receive"](headers, req.body)
            return status

        by_seq = {q.json().get("seq"): q for q in got}
        assert set(by_seq) == {None, 1, 2, 3}  # the ping, raised, acknowledged, dispatched
        # dispatched first (a gap: 1 and 2 read from the history), then repeats
        for seq in (3, 1, 2, 3, None):
            assert post(by_seq[seq]) == 204
        forged = Received("/hook", dict(by_seq[1].headers), by_seq[1].body.replace(b"smoke", b"gas__"))
        assert post(forged) == 401
        api.close()
    assert applied == [(alarm, 1, "raised"), (alarm, 2, "acknowledged"), (alarm, 3, "dispatched")]
