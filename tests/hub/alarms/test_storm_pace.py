"""What keeps a storm's decisions moving (``safehome bench storm``): the periodic re-check
leaves young signals to the live path and decides the rest in batches; a running sink
queues a supervision round instead of deciding it before the next round; routing reads the
webhook subscriptions once per transaction and never a stale list."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import event, func, select

from hub.alarms.reconciler import MAX_DEFERRED_ROUNDS
from hub.alarms.rules import Signal
from hub.alarms.service import AlarmService
from hub.alarms.store.models import Alarm, ProcessedSignal, WebhookSubscription
from hub.alarms.store.registry import place_of
from hub.db.events import store_events
from hub.db.state import Condition, ConditionKind, ConditionState
from hub.sealing import dev_box
from hub.sinks import ConditionChange
from protocols import EventKind
from safehome.testing.events import make_event
from safehome.testing.poll import until
from tests.hub.conftest import Hub, alarm_settings


def _store_signals(hub: Hub) -> None:
    """Two trouble events and an open and restored condition, stored now, not decided."""
    with hub.sessions() as s, s.begin():
        events = [make_event(gw, kind=EventKind.MAINS_LOST, sensor="power-1") for gw in ("gw-1", "gw-2")]
        assert store_events(s, events, hub.clock.now()) == [True, True]
        now = hub.clock.now()
        s.add(Condition(gateway_id="gw-3", sensor_id=None, kind="gateway_offline", state="restored",
                        opened_at=now, restored_at=now))  # fmt: skip


def _decided(hub: Hub) -> int:
    with hub.sessions() as s:
        return s.scalar(select(func.count()).select_from(ProcessedSignal)) or 0


def test_the_periodic_recheck_leaves_young_signals_to_the_live_path(hub: Hub) -> None:
    """A signal stored moments ago is in some worker's inbox: the periodic re-check (min age
    30 s) does not decide it again; once older, it does, in batches of batch_max."""
    _store_signals(hub)
    svc = AlarmService(alarm_settings(batch_max=2), hub.sessions, "w", clock=hub.clock)
    batches: list[int] = []
    real = svc.sink.handle_batch

    def counted(batch: Sequence[tuple[Signal, str]]) -> list[str]:
        batches.append(len(batch))
        return real(batch)

    svc.sink.handle_batch = counted  # type: ignore[method-assign]
    assert svc.reconciler.reconcile(min_age_s=30) == 0
    assert _decided(hub) == 0 and batches == []
    hub.clock.advance(31)
    assert svc.reconciler.reconcile(min_age_s=30) == 4  # two events, the condition's open and restore
    assert batches == [2, 2]
    assert _decided(hub) == 4
    assert svc.reconciler.reconcile(min_age_s=30) == 0


def test_the_recheck_at_start_decides_every_signal_however_young(hub: Hub) -> None:
    _store_signals(hub)
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    assert svc.reconcile() == 4
    with hub.sessions() as s:
        kinds = sorted(s.scalars(select(Alarm.kind)))
    assert kinds == ["gateway_offline", "mains_lost", "mains_lost"]


async def test_a_running_sink_queues_a_supervision_round_and_returns(hub: Hub) -> None:
    """The round is back before any of its conditions is decided (they are in the inbox);
    the alarm task then decides every one."""
    svc = AlarmService(alarm_settings(batch_max=2), hub.sessions, "w", clock=hub.clock)
    await svc.start()
    try:
        changes = [
            ConditionChange(500 + n, ConditionKind.GATEWAY_OFFLINE, ConditionState.OPEN, gw, None, hub.clock.now())
            for n, gw in enumerate(("gw-1", "gw-2", "gw-3"))
        ]
        await svc.sink.conditions_changed(changes)
        assert svc.sink.inbox.qsize() == 3

        def opened() -> int:
            with hub.sessions() as s:
                return s.scalar(select(func.count()).select_from(Alarm).where(Alarm.kind == "gateway_offline")) or 0

        await until(lambda: opened() == 3, what="three gateway_offline alarms")
    finally:
        await svc.stop()


def test_routing_reads_the_webhooks_once_per_transaction_and_never_a_stale_list(hub: Hub) -> None:
    reads: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM webhook_subscriptions" in statement:
            reads.append(statement)

    event.listen(hub.engine, "before_cursor_execute", seen)
    try:
        with hub.sessions() as s:
            with s.begin():
                first = [place_of(s, gw, None).ctx.webhooks for gw in ("gw-1", "gw-2", "gw-3")]
            assert first == [(), (), ()] and len(reads) == 1
            with s.begin():  # the same session, a later transaction: a new subscription counts
                s.add(WebhookSubscription(url="http://127.0.0.1:9/hook", secret_sealed=dev_box().seal("s" * 20),
                                          region_kind="district", region_id="pudong"))  # fmt: skip
            with s.begin():
                [hook] = place_of(s, "gw-1", None).ctx.webhooks
            assert hook.url == "http://127.0.0.1:9/hook" and len(reads) == 2
    finally:
        event.remove(hub.engine, "before_cursor_execute", seen)


def test_a_busy_worker_rechecks_life_safety_and_leaves_trouble_to_a_later_round(hub: Hub) -> None:
    """While the worker's inbox is busy the periodic re-check decides the smoke alarm and
    leaves the trouble signals (the two mains_lost events, the condition) for later."""
    _store_signals(hub)
    with hub.sessions() as s, s.begin():
        store_events(s, [make_event("gw-9", kind=EventKind.SMOKE, sensor="smoke-1")], hub.clock.now())
    svc = AlarmService(alarm_settings(), hub.sessions, "w", clock=hub.clock)
    hub.clock.advance(31)
    assert svc.reconciler.reconcile(min_age_s=30, life_safety_only=True) == 1
    with hub.sessions() as s:
        assert list(s.scalars(select(Alarm.kind))) == ["smoke"]
    assert svc.reconciler.reconcile(min_age_s=30) == 4


async def test_the_periodic_recheck_defers_trouble_a_few_rounds_at_most_while_the_inbox_is_busy(hub: Hub) -> None:
    """Rounds while the inbox holds signals leave trouble to later, MAX_DEFERRED_ROUNDS in a
    row at most: then one decides everything; an empty inbox decides everything at once."""
    svc = AlarmService(alarm_settings(reconcile_every_s=0.01), hub.sessions, "w", clock=hub.clock)
    rounds: list[bool] = []

    def recorded(min_age_s: float = 0.0, life_safety_only: bool = False) -> int:
        rounds.append(life_safety_only)
        return 0

    svc.reconciler.reconcile = recorded  # type: ignore[method-assign]
    svc.reconciler.watch.refresh = lambda: None  # type: ignore[method-assign]
    stopping = asyncio.Event()
    task = asyncio.create_task(svc.reconciler.run(stopping))
    svc.sink.inbox.put_nowait((9, 0, None, "cond:x:alarm"))  # type: ignore[arg-type]
    try:
        await until(lambda: len(rounds) >= 2 * (MAX_DEFERRED_ROUNDS + 1), within=30, what="ten busy rounds")
        svc.sink.inbox.get_nowait()
        seen = len(rounds)
        await until(lambda: len(rounds) >= seen + 2, within=30, what="two rounds with the inbox empty")
    finally:
        stopping.set()
        await task
    first = rounds[: 2 * (MAX_DEFERRED_ROUNDS + 1)]
    assert first == ([True] * MAX_DEFERRED_ROUNDS + [False]) * 2
    assert rounds[-1] is False  # the inbox empty: everything
