"""The synthetic registry: valid, deterministic by seed, and the validator catches what it must."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devices import registry as catalogue
from devices.capabilities import Battery, Tamper
from firmware_sim.errors import RegistryError
from firmware_sim.registry import (
    MODEL_KIND,
    MODEL_KINDS,
    generate,
    load_registry,
    parse_registry,
    registry_to_yaml,
)
from protocols.ids import is_valid_id

ROOT = Path(__file__).resolve().parents[2]


def test_generated_registry_round_trips_through_yaml_and_validates(tmp_path: Path) -> None:
    reg = generate(260, seed=7)
    path = tmp_path / "registry.yaml"
    path.write_text(registry_to_yaml(reg))
    back = load_registry(path)
    assert back == reg
    assert len(back.homes) == len(back.gateways) == 260
    assert len(back.workstations) == 6 and len(back.subdistricts) == 2
    assert {s.model for s in back.sensors} == set(MODEL_KIND)
    ids = [*(h.id for h in back.homes), *(g.id for g in back.gateways), *(s.id for s in back.sensors)]
    assert all(is_valid_id(i) for i in [*ids, *(w.id for w in back.workstations)])
    # every gateway has a smoke detector; sensor ids are unique per gateway
    assert {s.gateway for s in back.sensors if s.kind == "smoke"} == {g.id for g in back.gateways}
    assert back.check_references() == []


def test_model_kinds_follow_the_device_catalogue() -> None:
    """The simulator's table is plain data (no import of devices/): it must not drift from
    the definitions. Every sensor model of the catalogue is in it, raising what its inputs raise."""
    derived: dict[str, tuple[str, ...]] = {}
    for model in catalogue.models():
        defn = catalogue.get(model)
        if defn.is_output:
            continue
        kinds = [
            "tamper" if isinstance(c, Tamper) else "battery_low" if isinstance(c, Battery) else c.kind  # type: ignore[union-attr]
            for c in defn.capabilities
        ]
        derived[model] = tuple(dict.fromkeys(kinds))  # primary (first capability's) kind first
    assert derived == MODEL_KINDS
    assert MODEL_KIND["power-supervisor"] == "mains_lost" and MODEL_KIND["panic-button-tamper"] == "panic"


def test_generated_kits_are_a_realistic_mix() -> None:
    reg = generate(2000, seed=3)
    by_gw: dict[str, dict[str, str]] = {}
    for s in reg.sensors:
        by_gw.setdefault(s.gateway, {})[s.id] = s.model
    current = {g for g, kit in by_gw.items() if kit["smoke-1"] == "smoke-relay-supervised"}
    assert 0.25 < len(current) / len(by_gw) < 0.45
    # one kit generation per home: both smoke detectors alike; the UPS HAT comes with the current kit
    assert all(kit.get("smoke-2", kit["smoke-1"]) == kit["smoke-1"] for kit in by_gw.values())
    assert {g for g, kit in by_gw.items() if kit.get("power-1") == "power-supervisor"} == current
    panics = [kit["panic-1"] for kit in by_gw.values() if "panic-1" in kit]
    assert 0.2 < panics.count("panic-button-tamper") / len(panics) < 0.4
    ups = [s for s in reg.sensors if s.model == "power-supervisor"]
    assert {(s.id, s.kind, s.location, s.interval_s) for s in ups} == {
        ("power-1", "mains_lost", "gateway", 300)
    }
    walls = {s.location for s in reg.sensors if s.model == "panic-button-tamper"}
    assert walls == {"bathroom"}


def test_same_seed_same_district_other_seed_other_people() -> None:
    a, b, c = generate(120, seed=3), generate(120, seed=3), generate(120, seed=4)
    assert registry_to_yaml(a) == registry_to_yaml(b)
    assert [h.residents[0].name for h in a.homes] != [h.residents[0].name for h in c.homes]
    assert [g.id for g in a.gateways] == [g.id for g in c.gateways]  # ids are stable, people are not


def test_cli_writes_the_same_registry_to_stdout() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "safehome", "sim", "registry", "--homes", "30", "--seed", "5"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert parse_registry(yaml.safe_load(out)) == generate(30, seed=5)


def _doc() -> dict:  # type: ignore[type-arg]
    return generate(10, seed=1).model_dump(mode="json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["homes"][3].update(workstation="ws-9999"),
            "homes[3].workstation: unknown workstation 'ws-9999'",
        ),
        (lambda d: d["gateways"][2].update(home="home-404"), "gateways[2].home: unknown home 'home-404'"),
        (lambda d: d["sensors"][0].update(model="smoke-v9"), "sensors[0].model: unknown device model 'smoke-v9'"),
        (
            lambda d: d["sensors"][0].update(kind="gas"),
            "sensors[0].kind: model 'smoke-dry-contact' raises 'smoke'",
        ),
        (
            lambda d: d["sensors"].append(dict(d["sensors"][0])),
            "duplicate sensor 'smoke-1' on gateway 'gw-000001'",
        ),
        (lambda d: d["workstations"][0].update(subdistrict="sd-99"), "unknown subdistrict 'sd-99'"),
        (lambda d: d["homes"].append(dict(d["homes"][0])), "homes[10].id: duplicate id 'home-000001'"),
    ],
)
def test_broken_references_are_named(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = _doc()
    mutate(doc)
    with pytest.raises(RegistryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_registry(doc)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["gateways"][1].update(id="GW/1"), "gateways[1].id"),
        (lambda d: d["homes"][0]["residents"][0].update(phone="call me"), "homes[0].residents[0].phone"),
        (lambda d: d["workstations"][0].update(day_start="25:00"), "workstations[0].day_start"),
        (lambda d: d["homes"][0].update(residents=[]), "homes[0].residents"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["homes"][0].update(colour="blue"), "homes[0].colour"),
    ],
)
def test_bad_fields_are_located(mutate, where: str) -> None:  # type: ignore[no-untyped-def]
    doc = _doc()
    mutate(doc)
    with pytest.raises(RegistryError) as err:
        parse_registry(doc)
    assert err.value.where == where


def test_the_simulator_reads_the_hubs_file_format() -> None:
    """One schema: what the hub's importer accepts (a phone with spaces, a floor, a
    language, no day staff) the simulator reads too, with the same row models."""
    from hub.registry.schema import ROW_MODELS
    from protocols import registry_file

    assert ROW_MODELS is registry_file.ROW_MODELS
    doc = _doc()
    doc["homes"][0]["residents"][0].update(phone="+86 139 0000 1002", language="zh-Hans")
    doc["homes"][0].update(floor=3, door="302")
    doc["workstations"][0].update(day_start="none", day_end="none")
    reg = parse_registry(doc)
    home = reg.homes[0]
    assert (home.floor, home.door, home.residents[0].language) == ("3", "302", "zh-Hans")
    assert reg.workstations[0].day_start is None
    assert parse_registry(yaml.safe_load(registry_to_yaml(reg))) == reg  # and writes it back


def test_unreadable_file_is_a_registry_error(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("homes: [unclosed")
    with pytest.raises(RegistryError, match=str(bad)):
        load_registry(bad)


def test_hub_import_accepts_the_generated_registry_idempotently(tmp_path: Path) -> None:
    """The real `safehome hub import` (SQLite) takes what `safehome sim registry` writes."""
    from click.testing import CliRunner

    from hub.cli import hub

    path = tmp_path / "registry.yaml"
    path.write_text(registry_to_yaml(generate(120, seed=11)))
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    runner = CliRunner()
    assert runner.invoke(hub, ["db", "upgrade", "--db-url", url]).exit_code == 0
    first = runner.invoke(hub, ["import", str(path), "--db-url", url])
    assert first.exit_code == 0, first.output
    assert "gateways      created     120" in first.output
    from sqlalchemy import create_engine, func, select

    from hub.registry.models import Sensor

    with create_engine(url).connect() as db:
        models = dict(db.execute(select(Sensor.model, func.count()).group_by(Sensor.model)).all())
        kinds = set(db.execute(select(Sensor.model, Sensor.kind).distinct()).all())
    assert set(models) == set(MODEL_KIND)  # the newer models too
    assert kinds == set(MODEL_KIND.items())
    again = runner.invoke(hub, ["import", str(path), "--db-url", url])
    assert again.exit_code == 0 and again.output.strip().endswith("changed 0 row(s)")
