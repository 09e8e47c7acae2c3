"""One gateway floods through the deployment's broker (rate-limit plugin on) into a real hub
worker: another home's alarms are stored and acked while the flood goes on, the hub never
receives more of the flood than the gateway's bucket lets through, it learns of the rest
from the broker (``gateway_flooding``), and what was refused is stored when resent.
Outcomes and counts are asserted, never wall-clock times."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

import protocols as p
from hub.db.state import Condition
from hub.ingest.flooding import parse_shed_notice
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.hub.ingest.conftest import Worker, start_worker, stored
from tests.support.hub_gateway import ScriptedGateway
from tests.support.hub_mqtt import SecuredBroker, start_secured_broker

RATE, BURST = 50.0, 100
#: far above what the bucket lets through in a window (burst + rate x window = 600), far
#: below the flood: only the broker's notices can make the hub see a flood
FLOOD_LIMIT, FLOOD_WINDOW_S = 1000, 10.0


@pytest.fixture
def limited(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> SecuredBroker:
    return start_secured_broker(mosquitto_factory, tmp_path / "limited", rate=RATE, burst=BURST)


@pytest.fixture
async def hub(limited: SecuredBroker, db_url: str) -> AsyncIterator[Worker]:
    w = await start_worker(limited, db_url, subscribed=True, flood_max_messages=FLOOD_LIMIT, flood_window_s=FLOOD_WINDOW_S)
    yield w
    await w.service.stop()
    w.engine.dispose()


class Flood:
    """A gateway publishing smoke events at QoS 1 with 1,000 in flight, round after round,
    until stopped (a thread of its own)."""

    def __init__(self, gw: ScriptedGateway) -> None:
        self.gw = gw
        self.sent: list[p.Event] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        topic = str(p.Topic.of(self.gw.gw, "event"))
        while not self.stop.is_set():
            evs = [self.gw.event(p.EventKind.SMOKE, sensor=f"s-{i % 20}") for i in range(500)]
            infos = [self.gw.client.c.publish(topic, p.encode(e), qos=1) for e in evs]
            self.sent.extend(evs)
            for info in infos:
                info.wait_for_publish(30)

    def __enter__(self) -> Flood:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(60)


def flooding(w: Worker) -> list[tuple[str | None, str]]:
    with w.engine.connect() as c:
        rows = c.execute(
            select(Condition.gateway_id, Condition.state).where(Condition.kind == "gateway_flooding")
        )
        return [(g, s) for g, s in rows]


async def test_another_homes_alarms_are_stored_while_a_flood_goes_on(
    limited: SecuredBroker, hub: Worker
) -> None:
    hostile = ScriptedGateway(limited, "bf-hostile")
    hostile.client.c.max_inflight_messages_set(1000)  # "as fast as it can", not the edge's 16
    hostile.connect()
    home = ScriptedGateway(limited, "bf-home").connect()
    try:
        with Flood(hostile) as flood:
            await until(lambda: len(flood.sent) >= 2000, 60, "the flood under way")
            ids = []
            for _ in range(5):
                alarm = home.event(p.EventKind.PANIC, sensor="panic-1")
                home.send(alarm)
                ids.append(alarm.id)
                await home.acked([alarm.id], within=30)  # each at its first send
            assert flood.thread.is_alive(), "the flood had ended: nothing shown"
            assert all(home.acks[i][0].status is p.AckStatus.STORED for i in ids)
            assert stored(hub, ids) == 5
            sent, elapsed = len(flood.sent), time.monotonic() - flood.started
            # the hub got at most what the bucket lets through (burst + rate x time); more
            # time on a slow machine only raises the bound
            received = stored(hub, [e.id for e in flood.sent])
            assert received <= BURST + RATE * elapsed + 10, (received, elapsed)
            assert received < sent / 2
            # the rest was refused at the broker, and the hub was told: gateway_flooding
            await until(lambda: ("bf-hostile", "open") in flooding(hub), 30, "gateway_flooding opened")
            assert hub.count("safehome_broker_shed_messages_total") > 0
        assert flooding(hub) == [("bf-hostile", "open")]  # never the honest home
        # deferred, not lost: refused events are stored when the gateway resends them
        # (the edge resends what was not acked; here 100 of them, within the bucket's rate)
        first = flood.sent[: BURST + 100]
        missing = [e for e in first if e.id not in hostile.collect_acks()]
        assert missing, "nothing was refused"
        for _ in range(5):  # as the edge does: resend what is still unacked
            unacked = [e for e in missing if e.id not in hostile.collect_acks()]
            if not unacked:
                break
            for e in unacked:
                hostile.send(e)
                await asyncio.sleep(1 / RATE)
            await asyncio.sleep(1)
        await hostile.acked([e.id for e in missing], within=30)
        assert stored(hub, [e.id for e in first]) == len(first)
    finally:
        hostile.close()
        home.close()


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"gw": "../x", "shed": 3}', "is not a gateway id"),
        (b'{"gw": "gw-1", "shed": -1}', "is not a count"),
        (b'{"gw": "gw-1", "shed": true}', "is not a count"),
        (b'{"gw": "gw-1"}', "is not a count"),
    ],
)
def test_a_malformed_notice_says_what_is_wrong(payload: bytes, why: str) -> None:
    got = parse_shed_notice(payload)
    assert isinstance(got, str) and why in got


def test_a_notice_is_a_gateway_and_a_count() -> None:
    assert parse_shed_notice(b'{"gw":"gw-000042","shed":1234}') == ("gw-000042", 1234)
