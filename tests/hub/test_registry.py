"""Registry import/export: YAML and CSV, all-or-nothing validation, idempotent re-import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.cli import hub
from hub.registry.errors import RegistryFileError, RegistryValidationError, RowError
from hub.registry.files import dump_yaml, write_csv
from hub.registry.models import District, Gateway, Home, Sensor, Workstation
from hub.registry.service import import_register
from hub.registry.store import export
from safehome.testing.registry import sample_register


def write_yaml(tmp_path: Path, data: dict[str, Any], name: str = "register.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dump_yaml(data), encoding="utf-8")
    return path


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (District, Workstation, Home, Gateway, Sensor)
        }


def exported(factory: sessionmaker[Session]) -> dict[str, Any]:
    with factory() as s:
        return export(s)


def canonical(data: dict[str, Any]) -> dict[str, Any]:
    """Export order: sensors by (gateway, id), other tables by id."""
    return dict(data, sensors=sorted(data["sensors"], key=lambda r: (r["gateway"], r["id"])))


def test_yaml_import_stores_every_table(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    report = import_register(session_factory, [write_yaml(tmp_path, sample_register(homes=4))])
    assert report.tables["homes"].created == 4
    assert report.tables["sensors"].created == 12
    assert counts(session_factory) == {
        "districts": 1,
        "workstations": 2,
        "homes": 4,
        "gateways": 4,
        "sensors": 12,
    }
    with session_factory() as s:
        ws = s.get(Workstation, "ws-0002")
        assert ws is not None
        assert (ws.day_start, ws.day_end, ws.subdistrict_id) == (dt.time(8, 30), dt.time(17, 30), "sd-02")
        home = s.get(Home, "home-000001")
        assert home is not None
        assert home.residents[0]["birth_year"] == 1931
        assert home.key_holder == {"name": "李阿姨", "phone": "+86 137 0000 0000"}
        sensor = s.get(Sensor, ("gw-000001", "gas-1"))
        assert sensor is not None
        assert (sensor.model, sensor.kind, sensor.interval_s) == ("gas-detector", "gas", 3600)


def test_reimport_is_idempotent_and_updates_changes(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    data = sample_register()
    import_register(session_factory, [write_yaml(tmp_path, data)])
    again = import_register(session_factory, [write_yaml(tmp_path, data)])
    assert again.changed == 0
    assert again.tables["homes"].unchanged == 3

    data["homes"][1]["care_notes"] = "uses a wheelchair"
    data["sensors"][0]["interval_s"] = 600
    data["gateways"].append({"id": "gw-extra", "home": "home-000003"})
    third = import_register(session_factory, [write_yaml(tmp_path, data)])
    assert (
        third.tables["homes"].updated,
        third.tables["sensors"].updated,
        third.tables["gateways"].created,
    ) == (1, 1, 1)
    with session_factory() as s:
        home = s.get(Home, "home-000002")
        assert home is not None and home.care_notes == "uses a wheelchair"


def test_export_round_trips(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    data = sample_register()
    import_register(session_factory, [write_yaml(tmp_path, data)])
    out = exported(session_factory)
    assert out == canonical(data)
    # And the exported YAML imports as "no change".
    assert import_register(session_factory, [write_yaml(tmp_path, out, "exported.yaml")]).changed == 0


def test_csv_import_equals_yaml_import(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    data = sample_register()
    csv_dir = tmp_path / "csv"
    write_csv(data, csv_dir)
    report = import_register(session_factory, [csv_dir])
    assert report.tables["sensors"].created == 9
    assert exported(session_factory) == canonical(data)
    # Individual files work too, and a re-import changes nothing.
    assert import_register(session_factory, sorted(csv_dir.glob("*.csv"))).changed == 0


def test_every_error_is_reported_and_nothing_imported(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    data = sample_register()
    data["district"]["timezone"] = "Mars/Olympus"
    data["subdistricts"][1]["id"] = "SD 02"  # outside the id alphabet
    data["workstations"][0]["day_end"] = "25:00"
    data["workstations"][1]["subdistrict"] = "sd-99"  # dangling
    data["homes"][0]["residents"][0]["birth_year"] = "old"
    data["homes"][1]["adress"] = "typo"  # unknown column
    del data["homes"][2]["address"]  # missing
    data["gateways"].append({"id": "gw-000001", "home": "home-000002"})  # duplicate id
    data["sensors"][4]["interval_s"] = 5  # below the gateway's minimum
    data["sensors"].append(dict(data["sensors"][0]))  # duplicate (gateway, sensor)
    data["sensors"].append(
        {"id": "smoke-1", "gateway": "gw-nowhere", "model": "smoke-dry-contact", "kind": "smoke"}
    )
    # the device catalogue: a model it does not know, a kind the model never raises
    data["sensors"].append({"id": "s-12", "gateway": "gw-000001", "model": "smoke-x", "kind": "smoke"})
    data["sensors"].append({"id": "s-13", "gateway": "gw-000001", "model": "gas-detector", "kind": "smoke"})
    path = write_yaml(tmp_path, data)

    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [path])
    got = {(e.table, e.row, e.column) for e in info.value.errors}
    assert got == {
        ("district", 1, "timezone"),
        ("subdistricts", 2, "id"),
        ("workstations", 1, "day_end"),
        ("workstations", 2, "subdistrict"),
        ("homes", 1, "residents[0].birth_year"),
        ("homes", 2, "adress"),
        ("homes", 3, "address"),
        ("gateways", 4, "id"),
        ("sensors", 5, "interval_s"),
        ("sensors", 10, "id"),
        ("sensors", 11, "gateway"),
        ("sensors", 12, "model"),
        ("sensors", 13, "kind"),
    }
    messages = {(e.row, e.column): e.message for e in info.value.errors if e.table == "sensors"}
    assert messages[12, "model"].startswith("unknown device model 'smoke-x' (known: gas-detector, ")
    assert messages[13, "kind"] == "model 'gas-detector' raises 'gas', not 'smoke'"
    # Line numbers point into the file.
    lines = path.read_text(encoding="utf-8").splitlines()
    gw_dup = next(e for e in info.value.errors if e.table == "gateways")
    assert gw_dup.line is not None and "gw-000001" in lines[gw_dup.line - 1]
    assert "first in row 1" in gw_dup.message
    assert counts(session_factory) == {
        "districts": 0,
        "workstations": 0,
        "homes": 0,
        "gateways": 0,
        "sensors": 0,
    }


def test_partial_file_may_refer_to_rows_in_the_database(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_register(session_factory, [write_yaml(tmp_path, sample_register())])
    partial = {
        "version": 1,
        "district": sample_register()["district"],
        "homes": [dict(sample_register()["homes"][0], id="home-new")],  # workstation only in DB
        "gateways": [{"id": "gw-new", "home": "home-new"}],
        "sensors": [{"id": "smoke-1", "gateway": "gw-000002", "model": "smoke-dry-contact", "kind": "smoke"}],
    }
    report = import_register(session_factory, [write_yaml(tmp_path, partial, "partial.yaml")])
    assert report.tables["homes"].created == 1
    assert report.tables["homes"].kept == 3
    assert report.tables["sensors"].updated == 1  # location/interval back to defaults
    assert counts(session_factory)["homes"] == 4


def test_unquoted_yaml_times_and_csv_cells(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    text = dump_yaml(sample_register()).replace("day_start: 08:30", "day_start: 8:30")
    assert "day_start: 8:30" in text
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    import_register(session_factory, [path])
    with session_factory() as s:
        ws = s.get(Workstation, "ws-0002")
        assert ws is not None and ws.day_start == dt.time(8, 30)


@pytest.mark.parametrize(
    ("start", "end", "stored"),
    [
        ("08:00", "20:00", (dt.time(8), dt.time(20))),  # by day
        ("22:00", "06:00", (dt.time(22), dt.time(6))),  # the day shift crosses midnight
        ("00:00", "00:00", (dt.time(0), dt.time(0))),  # staffed 24 h
        ("none", "none", (None, None)),  # no day staff: on call around the clock
        (None, None, (None, None)),  # the same, as YAML null
    ],
)
def test_every_duty_hours_form_imports_and_exports(
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    start: str | None,
    end: str | None,
    stored: tuple[dt.time | None, dt.time | None],
) -> None:
    data = sample_register(homes=1)
    data["workstations"][0].update(day_start=start, day_end=end)
    import_register(session_factory, [write_yaml(tmp_path, data)])
    with session_factory() as s:
        ws = s.get(Workstation, "ws-0001")
        assert ws is not None and (ws.day_start, ws.day_end) == stored
    out = exported(session_factory)
    hours = (out["workstations"][0]["day_start"], out["workstations"][0]["day_end"])
    assert hours == ((start or "none", end or "none"))
    csv_dir = tmp_path / "csv"
    write_csv(out, csv_dir)
    assert import_register(session_factory, [csv_dir]).changed == 0


@pytest.mark.parametrize(("start", "end"), [("08:00", "none"), ("none", "20:00"), (None, "20:00")])
def test_half_given_duty_hours_are_refused(
    session_factory: sessionmaker[Session], tmp_path: Path, start: str | None, end: str | None
) -> None:
    data = sample_register(homes=1)
    data["workstations"][0].update(day_start=start, day_end=end)
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [write_yaml(tmp_path, data)])
    (error,) = info.value.errors
    assert (error.table, error.row, error.column) == ("workstations", 1, "day_end")
    assert "give both times, or 'none' for both (no day staff)" in error.message


def test_bad_csv_json_cell_and_all_other_errors(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    csv_dir = tmp_path / "csv"
    write_csv(sample_register(), csv_dir)
    homes = csv_dir / "homes.csv"
    rows = homes.read_text(encoding="utf-8").splitlines()
    rows[2] = rows[2].replace('[{""name""', '[{""name"" oops', 1)
    homes.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sensors = csv_dir / "sensors.csv"
    sensors.write_text(sensors.read_text(encoding="utf-8").replace(",3600", ",hourly", 1), encoding="utf-8")
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [csv_dir])
    got = {(e.table, e.row, e.column, e.line) for e in info.value.errors}
    assert ("homes", 2, "residents", 3) in got
    assert ("sensors", 1, "interval_s", 2) in got
    assert counts(session_factory)["homes"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("version: 1\ndistrict: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
        ("", "empty file"),
    ],
)
def test_unreadable_files(
    session_factory: sessionmaker[Session], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RegistryFileError, match=message):
        import_register(session_factory, [path])


def test_wrong_version_and_unknown_table(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    data: dict[str, Any] = sample_register()
    data["version"] = 2
    data["volunteers"] = [{"id": "v1"}]
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [write_yaml(tmp_path, data)])
    assert {e.table for e in info.value.errors} == {"version", "volunteers"}


def test_row_error_text() -> None:
    err = RowError("homes", 3, "residents[0].phone", "bad phone", line=45, row_id="home-3")
    assert str(err) == "homes row 3 (line 45, id home-3), column residents[0].phone: bad phone"


def test_cli_import_export(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    path = write_yaml(tmp_path, sample_register())
    dry = runner.invoke(hub, ["import", str(path), "--db-url", db_url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would change" in dry.output
    ok = runner.invoke(hub, ["import", str(path), "--db-url", db_url])
    assert ok.exit_code == 0, ok.output
    assert "changed 20 row(s)" in ok.output  # 1 + 2 + 2 + 3 + 3 + 9 (dry run wrote nothing)
    out = runner.invoke(hub, ["export", "--db-url", db_url])
    assert out.exit_code == 0, out.output
    assert yaml.safe_load(out.output) == canonical(sample_register())
    csv_out = runner.invoke(hub, ["export", "--db-url", db_url, "-o", str(tmp_path / "csvout")])
    assert csv_out.exit_code == 0, csv_out.output
    assert (tmp_path / "csvout" / "sensors.csv").exists()

    bad = sample_register()
    bad["gateways"][0]["home"] = "home-404"
    bad["sensors"][0]["model"] = "Smoke Detector"
    bad_result = runner.invoke(
        hub, ["import", str(write_yaml(tmp_path, bad, "bad.yaml")), "--db-url", db_url]
    )
    assert bad_result.exit_code == 1
    assert "gateways row 1" in bad_result.output and "column home" in bad_result.output
    assert "sensors row 1" in bad_result.output and "column model" in bad_result.output
    assert "2 error(s)" in bad_result.output


def test_cli_reads_the_database_url_from_the_hub_settings_env(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    path = write_yaml(tmp_path, sample_register(homes=1))
    result = runner.invoke(hub, ["import", str(path)], env={"SAFEHOME_HUB_DATABASE__URL": db_url})
    assert result.exit_code == 0, result.output
    out = runner.invoke(hub, ["export"], env={"SAFEHOME_HUB_DATABASE__URL": db_url})
    assert yaml.safe_load(out.output)["homes"][0]["id"] == "home-000001"


def test_cli_refuses_an_unmigrated_database(blank_db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    path = write_yaml(tmp_path, sample_register(homes=1))
    for args in (["import", str(path)], ["export"]):
        result = runner.invoke(hub, [*args, "--db-url", blank_db_url])
        assert result.exit_code == 1
        assert "run `safehome hub db upgrade` first" in result.output


def test_error_messages_are_plain_and_in_file_order(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    data = sample_register()
    data["sensors"][0]["model"] = "Smoke Detector"
    data["homes"][0]["key_holder"]["phone"] = "call the neighbour"
    data["gateways"][0]["home"] = "home-404"
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [write_yaml(tmp_path, data)])
    assert [(e.table, e.column) for e in info.value.errors] == [
        ("homes", "key_holder.phone"),
        ("gateways", "home"),
        ("sensors", "model"),
    ]
    assert info.value.errors[0].message.startswith("not a phone number")
    assert info.value.errors[2].message.startswith("not an id")


def test_duplicate_yaml_keys_are_errors(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    text = dump_yaml(sample_register()).replace(
        "- id: home-000002\n", "- id: home-000002\n  address: first address\n", 1
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [path])
    [err] = info.value.errors
    assert (err.table, err.row, err.column) == ("homes", 2, "address")
    assert "given twice" in err.message


def test_optional_fields_survive_csv_and_yaml_round_trips(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    data = sample_register()
    home = data["homes"][2]
    home["key_holder"] = None
    home["emergency_contacts"] = []
    home["care_notes"] = ""
    home["residents"] = [{"name": "张三"}]
    data["sensors"][0]["location"] = ""
    csv_dir = tmp_path / "csv"
    write_csv(data, csv_dir)
    import_register(session_factory, [csv_dir])
    assert exported(session_factory) == canonical(data)
    assert import_register(session_factory, [write_yaml(tmp_path, data)]).changed == 0


def test_export_picks_the_district(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    import_register(session_factory, [write_yaml(tmp_path, sample_register())])
    other = sample_register(homes=1, prefix="x")
    other["district"] = dict(other["district"], id="minhang", name="闵行区城运中心")
    for table in ("subdistricts", "workstations", "homes"):
        for row in other[table]:
            row["id"] = "mh-" + row["id"]
    for row in other["workstations"]:
        row["subdistrict"] = "mh-" + row["subdistrict"]
    for row in other["homes"]:
        row["workstation"] = "mh-" + row["workstation"]
    for row in other["gateways"]:
        row["home"] = "mh-" + row["home"]
    import_register(session_factory, [write_yaml(tmp_path, other, "minhang.yaml")])
    with session_factory() as s:
        with pytest.raises(LookupError, match="minhang, pudong"):
            export(s)
        assert export(s, "minhang") == canonical(other)
        assert export(s, "pudong") == canonical(sample_register())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nhomes: []\nhomes: []\n", ("homes", "table given twice")),
        ("version: 1\nsensors: 5\n", ("sensors", "expected a list of rows")),
        ("version: 1\nsensors:\n", ("district", "exactly one district")),
    ],
)
def test_yaml_table_shape_errors(
    session_factory: sessionmaker[Session], tmp_path: Path, text: str, expected: tuple[str, str]
) -> None:
    path = tmp_path / "shape.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [path])
    assert any(e.table == expected[0] and expected[1] in e.message for e in info.value.errors)


def test_yaml_python_tags_are_refused(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("version: 1\ndistrict: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(RegistryFileError, match="not valid YAML"):
        import_register(session_factory, [path])


def test_pure_python_yaml_reader_gives_the_same_rows() -> None:
    from hub.registry.yaml_stream import top_level

    def read(pure: bool) -> dict[str, Any]:
        return {
            key: (line, value[2] if isinstance(value, tuple) else [(i[0], i[2]) for i in value])
            for key, line, value in top_level(dump_yaml(sample_register()), pure_python=pure)
        }

    assert read(True) == read(False)
    assert read(False)["homes"][1][0] == (read(False)["homes"][0] + 1, sample_register()["homes"][0])


def test_yaml_tag_on_a_table_is_refused(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text("version: 1\nhomes: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(RegistryFileError, match="not allowed"):
        import_register(session_factory, [path])


def sensor_ids(factory: sessionmaker[Session]) -> set[tuple[str, str]]:
    with factory() as s:
        return {(g, i) for g, i in s.execute(select(Sensor.gateway_id, Sensor.id))}


def test_prune_deletes_what_the_file_no_longer_lists(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_register(session_factory, [write_yaml(tmp_path, sample_register())])
    data = sample_register()
    data["sensors"] = [s for s in data["sensors"] if (s["gateway"], s["id"]) != ("gw-000001", "gas-1")]
    # Without --prune the removed sensor is kept (and reported as such).
    report = import_register(session_factory, [write_yaml(tmp_path, data)])
    assert (report.tables["sensors"].kept, report.tables["sensors"].deleted) == (1, 0)
    assert ("gw-000001", "gas-1") in sensor_ids(session_factory)
    # A dry run reports the deletion and deletes nothing.
    dry = import_register(session_factory, [write_yaml(tmp_path, data)], dry_run=True, prune=True)
    assert dry.tables["sensors"].deleted == 1
    assert ("gw-000001", "gas-1") in sensor_ids(session_factory)
    done = import_register(session_factory, [write_yaml(tmp_path, data)], prune=True)
    assert (done.tables["sensors"].deleted, done.tables["sensors"].kept) == (1, 0)
    assert ("gw-000001", "gas-1") not in sensor_ids(session_factory)
    assert len(sensor_ids(session_factory)) == 8


def test_prune_cascades_below_a_removed_row(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    import_register(session_factory, [write_yaml(tmp_path, sample_register())])
    data = sample_register()
    # Remove subdistrict sd-02 and everything under it from the file.
    data["subdistricts"] = data["subdistricts"][:1]
    data["workstations"] = data["workstations"][:1]
    data["homes"] = [h for h in data["homes"] if h["workstation"] == "ws-0001"]
    kept_homes = {h["id"] for h in data["homes"]}
    data["gateways"] = [g for g in data["gateways"] if g["home"] in kept_homes]
    kept_gws = {g["id"] for g in data["gateways"]}
    data["sensors"] = [s for s in data["sensors"] if s["gateway"] in kept_gws]
    report = import_register(session_factory, [write_yaml(tmp_path, data)], prune=True)
    deleted = {name: t.deleted for name, t in report.tables.items() if t.deleted}
    assert deleted == {"subdistricts": 1, "workstations": 1, "homes": 1, "gateways": 1, "sensors": 3}
    assert exported(session_factory) == canonical(data)


def test_prune_leaves_parts_the_file_does_not_mention(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import_register(session_factory, [write_yaml(tmp_path, sample_register())])
    full = sample_register()
    partial = {
        "version": 1,
        "district": full["district"],
        "gateways": [g for g in full["gateways"] if g["id"] == "gw-000002"],
        "sensors": [s for s in full["sensors"] if s["gateway"] == "gw-000002" and s["id"] != "panic-1"],
    }
    report = import_register(session_factory, [write_yaml(tmp_path, partial, "partial.yaml")], prune=True)
    assert report.tables["sensors"].deleted == 1
    assert report.tables["gateways"].deleted == 0  # no home listed: other gateways untouched
    assert report.tables["subdistricts"].deleted == 0  # the district row is always there
    assert len(sensor_ids(session_factory)) == 8


def test_cli_prune(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(
            hub, ["import", str(write_yaml(tmp_path, sample_register())), "--db-url", db_url]
        ).exit_code
        == 0
    )
    smaller = sample_register(homes=2)
    result = runner.invoke(
        hub, ["import", str(write_yaml(tmp_path, smaller, "s.yaml")), "--db-url", db_url, "--prune"]
    )
    assert result.exit_code == 0, result.output
    assert "changed 5 row(s)" in result.output  # home 3, its gateway and its 3 sensors
    out = runner.invoke(hub, ["export", "--db-url", db_url])
    assert yaml.safe_load(out.output) == canonical(smaller)


def test_floor_door_and_language_survive_csv_and_yaml_round_trips(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    data = sample_register()
    home = data["homes"][0]
    home["floor"], home["door"] = "3", "301"
    home["residents"] = [{"name": "王1", "birth_year": 1938, "language": "zh-Hans", "conditions": ["dementia"]}]
    csv_dir = tmp_path / "csv"
    write_csv(data, csv_dir)
    import_register(session_factory, [csv_dir])
    assert exported(session_factory) == canonical(data)
    with session_factory() as s:
        row = s.get(Home, home["id"])
        assert row is not None and (row.floor, row.door) == ("3", "301")
        assert row.residents[0]["language"] == "zh-Hans"
    assert import_register(session_factory, [write_yaml(tmp_path, data)]).changed == 0


def test_an_unquoted_yaml_floor_is_text_and_a_bad_language_is_named(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    text = dump_yaml(sample_register()).replace(
        "- id: home-000001\n", "- id: home-000001\n  floor: 12\n", 1
    )
    path = tmp_path / "floor.yaml"
    path.write_text(text, encoding="utf-8")
    import_register(session_factory, [path])
    with session_factory() as s:
        row = s.get(Home, "home-000001")
        assert row is not None and row.floor == "12"
    data = sample_register()
    data["homes"][1]["residents"] = [{"name": "x", "language": "Chinese please"}]
    with pytest.raises(RegistryValidationError) as info:
        import_register(session_factory, [write_yaml(tmp_path, data)])
    [err] = info.value.errors
    assert (err.table, err.row, err.column) == ("homes", 2, "residents[0].language")
    assert "language tag" in err.message
