"""Scenarios: the issue's four examples planned exactly, seeded, scheduled with a controlled clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

import protocols as p
from firmware_sim.errors import ScenarioError
from firmware_sim.fleet import Fleet, GatewaySpec, SensorSpec
from firmware_sim.scenario import Scheduler, load_scenario, parse_scenario, plan
from firmware_sim.scenario.run import play
from safehome.testing.acker import HubAcker
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import until
from tests.firmware_sim.conftest import RunFleet

SENSORS = (SensorSpec("smoke-1", "smoke-dry-contact", "smoke"), SensorSpec("gas-1", "gas-detector", "gas"),
           SensorSpec("panic-1", "panic-button", "panic"))  # fmt: skip
#: the current kit: supervised smoke detector, wall panic button with a lid tamper, UPS HAT
CURRENT_KIT = (SensorSpec("smoke-1", "smoke-relay-supervised", "smoke"), SensorSpec("gas-1", "gas-detector", "gas"),
               SensorSpec("panic-1", "panic-button-tamper", "panic"),
               SensorSpec("power-1", "power-supervisor", "mains_lost"))  # fmt: skip


def fleet_specs(n: int = 1200) -> list[GatewaySpec]:
    # 600 homes in ws-0001, the rest in ws-0002; every third home has the current kit
    return [
        GatewaySpec(
            f"gw-{i:06d}",
            CURRENT_KIT if i % 3 == 0 else SENSORS,
            f"home-{i:06d}",
            "ws-0001" if i <= 600 else "ws-0002",
        )
        for i in range(1, n + 1)
    ]


def scn(text: str):  # type: ignore[no-untyped-def]
    return parse_scenario(yaml.safe_load(text))


def test_smoke_at_a_clock_time_in_one_home() -> None:
    actions = plan(
        scn("start: '02:10'\nsteps: [{at: '02:13', smoke: {home: home-000042, clear_after: 2m}}]"),
        fleet_specs(),
    )
    assert [(a.t, a.op, a.gw, a.kind) for a in actions] == [
        (180.0, "alarm", "gw-000042", "smoke"), (300.0, "restore", "gw-000042", "smoke"),
    ]  # fmt: skip


def test_power_cut_in_500_homes_of_a_workstation_then_restore() -> None:
    text = "seed: 9\nsteps: [{at: 1m, power_cut: {workstation: ws-0001, homes: 500, duration: 10m}}]"
    actions = plan(scn(text), fleet_specs())
    down = {a.gw for a in actions if a.op in ("link_down", "power_off")}
    assert len(down) == 500 and all(int(g[3:]) <= 600 for g in down)
    assert {a.t for a in actions if a.op in ("link_down", "power_off")} == {60.0}
    assert {a.gw for a in actions if a.op in ("link_up", "power_on") and a.t == 660.0} == down
    # with a UPS HAT the gateway runs on, behind a dead router, and buffers mains_lost ...
    ups = {a.gw for a in actions if a.op == "link_down"}
    assert ups == {g for g in down if int(g[3:]) % 3 == 0} and ups
    mains = [(a.op, a.gw, a.sensor, a.t) for a in actions if a.kind == "mains_lost"]
    assert sorted(mains) == sorted([*(("alarm", g, "power-1", 60.0) for g in ups),
                                    *(("restore", g, "power-1", 660.0) for g in ups)])  # fmt: skip
    # ... without one it goes dark with the mains and boots when it returns
    dark = {a.gw for a in actions if a.op == "power_off"}
    assert dark == down - ups and {a.gw for a in actions if a.op == "power_on"} == dark
    assert plan(scn(text), fleet_specs()) == actions  # same seed, same homes
    other = {
        a.gw
        for a in plan(scn(text.replace("seed: 9", "seed: 10")), fleet_specs())
        if a.op in ("link_down", "power_off")
    }
    assert other != down


@pytest.mark.parametrize(
    ("kind", "sensors"),
    [
        ("battery_low", {"smoke-1", "power-1"}),
        ("tamper", {"smoke-1", "panic-1"}),
        ("mains_lost", {"power-1"}),
    ],
)
def test_troubles_come_only_from_sensors_that_can_raise_them(kind: str, sensors: set[str]) -> None:
    actions = plan(scn(f"steps: [{{trouble: {{workstation: ws-0001, kind: {kind}, clear_after: 1m}}}}]"),
                   fleet_specs())  # fmt: skip
    # only the current kit has a trouble relay, a tamper loop or a UPS HAT: a dry-contact
    # smoke detector's low battery is invisible to the gateway
    assert {a.gw for a in actions} == {f"gw-{i:06d}" for i in range(3, 601, 3)}
    assert {a.sensor for a in actions} <= sensors and all(a.sensor for a in actions)
    assert [a.op for a in actions].count("restore") == 200


def test_trouble_on_a_sensor_that_cannot_raise_it_is_named() -> None:
    with pytest.raises(
        ScenarioError, match="no selected gateway has sensor 'gas-1' that raises tamper"
    ) as err:
        plan(scn("steps: [{trouble: {kind: tamper, sensor: gas-1}}]"), fleet_specs(6))
    assert err.value.where == "steps.0.trouble"
    with pytest.raises(ScenarioError, match=r"raises mains_lost \(models that do: power-supervisor\)"):
        plan(scn("steps: [{trouble: {gateway: gw-000001, kind: mains_lost}}]"), fleet_specs(6))
    # a gateway-level trouble needs no sensor
    [a] = plan(scn("steps: [{trouble: {gateway: gw-000001, kind: clock_unsynced}}]"), fleet_specs(6))
    assert (a.gw, a.kind, a.sensor) == ("gw-000001", "clock_unsynced", None)


def test_gas_leak_ramps_over_five_minutes_alarms_once_and_restores_on_ventilation() -> None:
    text = "steps: [{gas_leak: {home: home-000007, peak_lel: 40, ramp: 5m, hold: 2m, vent: 3m}}]"
    actions = plan(scn(text), fleet_specs())
    readings = [(a.t, a.value) for a in actions if a.op == "reading"]
    ramp = [v for t, v in readings if t <= 300]
    assert None not in ramp
    assert ramp == sorted(v for v in ramp if v is not None) and ramp[0] == 0.0 and ramp[-1] == 40.0
    assert max(v for _t, v in readings if v is not None) == 40.0 and readings[-1][1] == 0.0
    events = [(a.t, a.op) for a in actions if a.kind == "gas"]
    assert events == [
        (80.0, "alarm"),
        (580.0, "restore"),
    ]  # 10 %LEL at 75 s → next 10 s step; ≤5 %LEL at 577.5 s while venting


def test_thirty_percent_of_gateways_flap_every_minute() -> None:
    actions = plan(scn("steps: [{flap: {share: 0.3, every: 1m, down: 10s, until: 5m}}]"), fleet_specs(100))
    downs = [a for a in actions if a.op == "link_down"]
    flappers = {a.gw for a in downs}
    assert len(flappers) == 30 and len(downs) == 30 * 5
    for minute in range(5):
        assert {a.gw for a in downs if minute * 60 <= a.t < minute * 60 + 60} == flappers
    ups = {(a.gw, a.t) for a in actions if a.op == "link_up"}
    assert all((a.gw, round(a.t + 10, 3)) in ups for a in downs)


def test_incidents_are_seeded_and_each_restore_follows_its_alarm() -> None:
    text = "seed: 3\nsteps: [{incidents: {per_hour: 600, until: 1h}}]"
    a1, a2 = plan(scn(text), fleet_specs(50)), plan(scn(text), fleet_specs(50))
    assert a1 == a2 and 400 < sum(a.op == "alarm" for a in a1) < 800
    # each incident is one the gateway's kit can report
    kit = {g.id: {s.id: s.model for s in g.sensors} for g in fleet_specs(50)}
    troubles = {"battery_low": {"smoke-relay-supervised", "power-supervisor"},
                "tamper": {"smoke-relay-supervised", "panic-button-tamper"}, "mains_lost": {"power-supervisor"}}  # fmt: skip
    seen = {a.kind for a in a1 if a.op == "alarm"}
    assert seen == {"smoke", "panic", "gas", *troubles}
    for a in a1:
        if a.kind in troubles:
            assert a.sensor is not None and kit[a.gw][a.sensor] in troubles[a.kind], a
    open_: set[tuple[str, str]] = set()
    for a in a1:
        if a.op == "alarm":
            open_.add((a.gw, a.kind))
        elif a.op == "restore":
            assert (a.gw, a.kind) in open_


def test_scheduler_releases_each_action_once_in_order_with_a_controlled_clock() -> None:
    actions = plan(
        scn(
            "steps: [{at: 10s, smoke: {gateway: gw-000001, clear_after: 20s}}, {at: 5s, panic: {gateway: gw-000002}}]"
        ),
        fleet_specs(3),
    )
    s = Scheduler(actions)
    assert s.due(4.9) == [] and s.next_in(4.9) == pytest.approx(0.1)
    assert [a.kind for a in s.due(10.0)] == ["panic", "smoke"]
    assert s.due(10.0) == []
    assert [a.op for a in s.due(100.0)] == ["restore"] and s.done and s.next_in(100.0) is None
    fast = Scheduler(actions, speed=10)
    assert [a.kind for a in fast.due(1.0)] == ["panic", "smoke"]


@pytest.mark.parametrize(
    ("text", "where", "msg"),
    [
        ("steps: [{smoke: {home: home-999999}}]", "steps.0.smoke.home", "unknown home"),
        ("steps: [{at: '02:13', smoke: {home: home-000001}}]", "steps.0.at", "needs a scenario 'start'"),
        ("steps: [{at: 5 minutes, smoke: {}}]", "steps.0.at", "not a duration"),
        ("steps: [{smoke: {}, panic: {}}]", "steps.0", "exactly one action"),
        ("steps: [{power_cut: {duration: soon}}]", "steps.0.power_cut.duration", "not a duration"),
        ("steps: [{flap: {share: 1.5}}]", "steps.0.flap.share", "less than or equal to 1"),
        ("steps: [{smoke: {colour: red}}]", "steps.0.smoke.colour", "Extra inputs"),
    ],
)
def test_bad_scenarios_name_the_step(text: str, where: str, msg: str) -> None:
    with pytest.raises(ScenarioError, match=msg) as err:
        plan(scn(text), fleet_specs(3))
    assert err.value.where == where


def test_example_scenarios_in_the_repo_plan(tmp_path: Path) -> None:
    from firmware_sim.fleet import specs_from_registry
    from firmware_sim.registry import generate

    specs = specs_from_registry(generate(1200, seed=1))
    root = Path(__file__).resolve().parents[2] / "firmware_sim" / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        assert plan(load_scenario(f), specs), f


async def test_scenario_drives_a_real_fleet(mosquitto: Mosquitto, run_fleet: RunFleet) -> None:
    acker = HubAcker(mosquitto.host, mosquitto.port, shared=False)
    try:
        fleet: Fleet = await run_fleet(2)
        gw = sorted(fleet.gateways)[1]
        actions = plan(
            scn(f"steps: [{{smoke: {{gateway: {gw}, clear_after: 0.2s}}}}]"),
            list(g.spec for g in fleet.gateways.values()),
        )
        await asyncio.wait_for(play(fleet, Scheduler(actions)), 10)

        def distinct() -> list[p.Event]:
            # by first arrival: under load the alarm's resend (0.3 s) can come before the restore
            seen: dict[str, p.Event] = {}
            for e in acker.of(gw, p.Channel.EVENT):
                seen.setdefault(e.id, e)
            return list(seen.values())

        events = await until(lambda: distinct() if len(distinct()) >= 2 else [], what="two distinct events")
        assert [(e.kind, e.state) for e in events] == [
            (p.EventKind.SMOKE, p.EventState.ALARM),
            (p.EventKind.SMOKE, p.EventState.RESTORE),
        ]
    finally:
        acker.close()
