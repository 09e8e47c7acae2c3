"""Fleet mode against the real Mosquitto: resend until acked (same id), acks stop it, LWT, state."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from firmware_sim.fleet import Fleet
from firmware_sim.scenario import Action
from firmware_sim.scenario.run import apply
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.firmware_sim.conftest import RunFleet, specs


async def test_event_is_resent_with_the_same_id_until_stored(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    acking = threading.Event()
    acker = HubAcker(
        mosquitto.host, mosquitto.port, shared=False, should_ack=lambda m: acking.is_set() and isinstance(m, p.Event)
    )
    try:
        fleet: Fleet = await run_fleet(1)
        gw = next(iter(fleet.gateways))
        pend = fleet.trigger(gw, p.EventKind.PANIC, sensor="panic-1")
        await until(lambda: len(acker.of(gw, p.Channel.EVENT)) >= 3, what="three deliveries")
        got = acker.of(gw, p.Channel.EVENT)
        assert {e.id for e in got} == {pend.id}
        assert {e.seq for e in got} == {got[0].seq}  # a resend is the same message, not a new one
        acking.set()
        await until(lambda: pend.id not in fleet.gateways[gw].pending, what="ack to clear the event")
        n_first = len(acker.of(gw, p.Channel.EVENT))
        # a second event goes through several resend cycles; the acked one is never sent again
        acking.clear()
        second = fleet.trigger(gw, p.EventKind.SMOKE, sensor="smoke-1")
        await until(
            lambda: sum(e.id == second.id for e in acker.of(gw, p.Channel.EVENT)) >= 3, what="resends"
        )
        assert sum(e.id == pend.id for e in acker.of(gw, p.Channel.EVENT)) == n_first
    finally:
        acker.close()


async def test_alarm_overtakes_backlog_after_reconnect(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False, should_ack=lambda m: False)
    try:
        fleet: Fleet = await run_fleet(1, telemetry_s=3600, heartbeat_s=3600)
        gw = next(iter(fleet.gateways))
        fleet.link_down(gw)
        for _ in range(5):
            fleet.send_telemetry(gw)
        alarm = fleet.trigger(gw, p.EventKind.GAS, sensor="gas-1")
        start = len(acker.uplink())
        fleet.link_up(gw)
        await until(lambda: len(acker.of(gw, p.Channel.TELEMETRY)) >= 5, what="backlog")
        after = [m for _t, m in acker.uplink()[start:] if m.gw == gw and _t.channel != p.Channel.STATUS]
        assert after[0].id == alarm.id
    finally:
        acker.close()


async def test_killed_gateway_leaves_a_retained_lwt_offline(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    fleet: Fleet = await run_fleet(2)
    victim, other = list(fleet.gateways)
    statuses: list[p.Status] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lwt-{victim}")
    sub.on_message = lambda _c, _u, m: statuses.append(p.decode(p.Channel.STATUS, bytes(m.payload), p.Status))
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    try:
        sub.subscribe(str(p.Topic.of(victim, p.Channel.STATUS)), qos=1)
        await until(
            lambda: any(s.state == p.GatewayState.ONLINE for s in statuses), what="retained online status"
        )
        fleet.link_down(victim)
        last = await until(lambda: [s for s in statuses if s.state == p.GatewayState.OFFLINE], what="LWT")
        assert last[-1].reason == "lwt" and last[-1].gw == victim
        assert other in fleet.sessions and victim not in fleet.sessions
    finally:
        sub.loop_stop()
        sub.disconnect()


async def test_a_gateway_without_power_goes_dark_and_boots_with_what_it_kept(
    mosquitto: Mosquitto, run_fleet: RunFleet
) -> None:
    """A power cut in a home without a UPS HAT (scenario ops power_off / power_on)."""
    acking = threading.Event()
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False, should_ack=lambda m: acking.is_set())
    try:
        fleet: Fleet = await run_fleet(2, telemetry_s=0.1)
        dark, lit = list(fleet.gateways)
        kept = fleet.trigger(dark, p.EventKind.SMOKE, sensor="smoke-1")  # sent, never acked yet
        await until(lambda: any(e.id == kept.id for e in acker.of(dark, p.Channel.EVENT)), what="first send")
        apply(fleet, Action(0.0, 0, "power_off", dark))
        await until(
            lambda: [s for s in acker.of(dark, p.Channel.STATUS) if s.reason == "lwt"], what="Last-Will"
        )
        pending = set(fleet.gateways[dark].pending)
        apply(fleet, Action(0.0, 1, "alarm", dark, kind="panic", sensor="panic-1"))  # no power: unseen
        # the powered gateway records three more batches: the dark one's ticks came and went
        def ids() -> set[str]:
            return {m.id for m in acker.of(lit, p.Channel.TELEMETRY)}

        before = len(ids())
        await until(lambda: len(ids()) >= before + 3, what="telemetry of the powered gateway")
        assert set(fleet.gateways[dark].pending) == pending and dark not in fleet.sessions
        assert fleet.stats.counts["events_while_dark"] == 1
        acking.set()
        apply(fleet, Action(0.0, 2, "power_on", dark))
        await until(lambda: kept.id not in fleet.gateways[dark].pending, what="the kept alarm resent, stored")
        # nothing from the dark gateway between its Last-Will and its next birth
        order = [
            (t.channel, getattr(m, "reason", None)) for t, m in acker.uplink() if t.gateway_id == dark
        ]
        lwt = order.index((p.Channel.STATUS, "lwt"))
        assert order[lwt + 1] == (p.Channel.STATUS, "birth")
        assert not any(e.kind is p.EventKind.PANIC for e in acker.of(dark, p.Channel.EVENT))
    finally:
        acker.close()


async def test_heartbeats_and_batched_telemetry_flow_and_home_is_told(
    mosquitto: Mosquitto, run_fleet: RunFleet
) -> None:
    told: list[p.AckItem] = []
    fleet: Fleet = await run_fleet(3, heartbeat_s=0.2, telemetry_s=0.3)
    fleet.observer.home_told = lambda gw, item: told.append(item)  # type: ignore[method-assign]
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        gws = list(fleet.gateways)
        await until(lambda: all(len(acker.of(g, p.Channel.TELEMETRY)) >= 2 for g in gws), what="telemetry")
        await until(lambda: all(len(acker.of(g, p.Channel.STATUS)) >= 2 for g in gws), what="heartbeats")
        tele = acker.of(gws[0], p.Channel.TELEMETRY)[0]
        assert {r.sensor for r in tele.readings} == {"smoke-1", "gas-1"}
        await until(lambda: all(not fleet.gateways[g].pending for g in gws), what="telemetry acked")
        pend = fleet.trigger(gws[1], p.EventKind.SMOKE, sensor="smoke-1")
        await until(lambda: pend.id not in fleet.gateways[gws[1]].pending, what="stored")
        acker.ack(gws[1], pend.id, p.AckStatus.DISPATCHED, by="ws-0001")
        await until(lambda: told, what="help is on the way")
        assert told[0].status == p.AckStatus.DISPATCHED and told[0].id == pend.id
    finally:
        acker.close()


async def test_restarted_fleet_resends_unacked_with_original_ids(
    mosquitto: Mosquitto, run_fleet: RunFleet, tmp_path: Path
) -> None:
    state = tmp_path / "fleet.db"
    gateways = specs(1, "simdur")
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False, should_ack=lambda m: False)
    try:
        first: Fleet = await run_fleet(gateways=gateways, state_path=state, telemetry_s=3600)
        pend = first.trigger("simdur-000", p.EventKind.PANIC, sensor="panic-1")
        seq = first.gateways["simdur-000"].seq
        await first.stop()
        second: Fleet = await run_fleet(gateways=gateways, state_path=state, telemetry_s=3600)
        n = len(acker.of("simdur-000", p.Channel.EVENT))
        await until(lambda: len(acker.of("simdur-000", p.Channel.EVENT)) > n, what="resend after restart")
        assert acker.of("simdur-000", p.Channel.EVENT)[-1].id == pend.id
        assert second.gateways["simdur-000"].seq == seq
        assert second.trigger("simdur-000", p.EventKind.SMOKE).event.seq == seq + 1  # type: ignore[union-attr]
    finally:
        acker.close()


async def test_bad_downlink_is_counted_and_the_gateway_keeps_working(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    fleet: Fleet = await run_fleet(1)
    gw = next(iter(fleet.gateways))
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        acker.publish(gw, p.Channel.ACK, b"{not json")
        acker.publish(gw, p.Channel.ACK, p.encode(p.Ack(gw="someone-else", ts=1, items=[
            p.AckItem(id=p.new_event_id(), status=p.AckStatus.STORED)])))  # fmt: skip
        await until(
            lambda: fleet.stats.counts["downlink_rejected:gateway_mismatch"] == 1, what="mismatch counted"
        )
        assert fleet.stats.counts["downlink_rejected:bad_json"] == 1
        pend = fleet.trigger(gw, p.EventKind.PANIC)
        await until(lambda: not fleet.gateways[gw].pending, what="still acked")
        assert pend.id in {e.id for e in acker.of(gw, p.Channel.EVENT)}
    finally:
        acker.close()


def test_fleet_cli_runs_a_registry_with_backlog_and_reports(tmp_path: Path, mosquitto: Mosquitto) -> None:
    import subprocess
    import sys

    from firmware_sim.registry import generate, registry_to_yaml

    reg = tmp_path / "r.yaml"
    reg.write_text(registry_to_yaml(generate(12, seed=3, district_id="clitest")))
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "safehome", "sim", "fleet", "--registry", str(reg), "--homes", "10",
             "--host", mosquitto.host, "--port", str(mosquitto.port), "--backlog", "0.1", "--telemetry", "60",
             "--report-every", "0.5", "--duration", "3"],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "connected 10/10" in out.stderr
        assert "pending 0" in out.stderr.splitlines()[-1]  # 6 backlog batches per gateway, all acked
        assert len(acker.of("gw-000003", p.Channel.TELEMETRY)) >= 6
    finally:
        acker.close()


def mosquitto_passwords(path: Path, users: dict[str, str]) -> Path:
    import subprocess

    path.touch()
    for user, pw in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, pw], check=True)
    return path


async def test_each_gateway_logs_in_with_its_own_credentials(mosquitto_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from firmware_sim.errors import FleetError
    from firmware_sim.fleet import FleetSettings
    from firmware_sim.runner import password_file

    pwfile = mosquitto_passwords(
        tmp_path / "passwd", {gw: f"secret-{gw}" for gw in ("simpw-000", "simpw-001")}
    )
    broker = mosquitto_factory(allow_anonymous=False, extra_config=f"password_file {pwfile}\n")
    creds_file = tmp_path / "creds"
    creds_file.write_text("# gateway-id:password\nsimpw-000:secret-simpw-000\nsimpw-001:secret-simpw-001\n")
    settings = FleetSettings(host=broker.host, port=broker.port)
    fleet = Fleet(specs(2, "simpw"), settings, password_file(creds_file))
    await fleet.start()
    try:
        assert fleet.connected == 2
    finally:
        await fleet.stop()
    creds_file.write_text("simpw-000:wrong\nsimpw-001:wrong\n")
    with pytest.raises(FleetError, match=r"bad user name or password|not authorized"):
        await Fleet(specs(2, "simpw"), settings, password_file(creds_file)).start()


async def test_a_link_breaking_under_a_write_stops_only_that_gateway(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    """A broker's SIGKILL leaves sessions ``connected`` but their transports closing until
    asyncio delivers ``connection_lost`` on a later turn. A write in that window failed
    with MqttError out of the tick and killed the loop that drives every gateway: the whole
    fleet went quiet (no heartbeat, no reconnect) while its process looked alive."""
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        fleet: Fleet = await run_fleet(2, telemetry_s=3600, heartbeat_s=3600)
        broken, other = sorted(fleet.gateways)
        s = fleet.sessions[broken]
        assert s.transport is not None
        s.transport.close()  # closing now; connection_lost comes on a later turn of the loop
        assert s.connected
        # every write of the broken gateway in this window, as the tick makes them
        fleet.heartbeat(broken)
        fleet.trigger(broken, p.EventKind.SMOKE, sensor="smoke-1")
        fleet.tick(time.monotonic() + 3600)  # heartbeats, telemetry and keep-alive all due
        assert fleet.stats.counts["send_failed"] >= 2
        # the other gateway and the broken one (after its reconnect) go on
        alarm = fleet.trigger(other, p.EventKind.GAS, sensor="gas-1")
        await until(lambda: alarm.id not in fleet.gateways[other].pending, what="the other gateway's alarm acked")
        await until(lambda: not fleet.gateways[broken].pending, what="the broken gateway's smoke resent and acked")
        assert fleet.stats.counts["connects"] >= 3  # two at start, the broken one again
    finally:
        acker.close()


async def test_the_fleet_command_fails_when_its_loop_dies(mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet whose loop died must fail, not go on printing status lines as if it ran."""
    from firmware_sim import runner
    from firmware_sim.errors import FleetError
    from firmware_sim.fleet import FleetSettings

    def broken_tick(self: Fleet, now: float) -> list[str]:
        raise RuntimeError("tick broke")

    monkeypatch.setattr(Fleet, "tick", broken_tick)
    settings = FleetSettings(host=mosquitto.host, port=mosquitto.port, tick_s=0.02)
    with pytest.raises(FleetError, match="tick broke"):
        await asyncio.wait_for(runner.run(specs(1, "simdie"), settings, duration=60, report_every=0.05), timeout=30)
