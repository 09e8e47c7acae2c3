"""The audit log: every lifecycle step of a case exactly once (repeats and refusals add
none), append-only in the database itself (a trigger refuses UPDATE and DELETE, on SQLite and
PostgreSQL), readable by auditors through the API (filters, CSV export), by nobody else."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from hub import audit
from hub.alarms.store.models import AlarmTransition, WebhookSubscription
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.tokens import create_token
from hub.api.users import create_user
from hub.audit import AuditEntry
from hub.cli import hub as hub_cli
from hub.db.engine import make_engine, make_session_factory
from hub.sealing import generate_key
from safehome.testing.registry import sample_register
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app

CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
STEPS = [
    ("acknowledge", {"note": "on it"}),
    ("dispatch", {"responder": "volunteer Liu"}),
    ("arrive", {}),
    ("resolve", {"outcome": "cooking_smoke"}),
    ("review", {}),
]


@dataclass
class Api:
    hub: Hub
    c: httpx.Client
    supervisor: dict[str, str]
    auditor: dict[str, str]


@pytest.fixture
def api(hub: Hub) -> Iterator[Api]:
    with hub.sessions() as s, s.begin():
        token, _ = create_token(s, "supervisor", "subdistrict:sd-01", "sd-01 desk", hub.clock.now())
        create_user(
            s, "audrey", "auditor password", "auditor", "district:pudong", hub.clock.now(), hasher=CHEAP
        )
    app = make_api_app(ApiContext(hub.sessions, hub.clock, password_hasher=CHEAP))
    with serve_app(app) as base, httpx.Client(base_url=base) as c:
        r = c.post("/api/v1/auth/login", json={"username": "audrey", "password": "auditor password"})
        assert r.status_code == 200, r.text
        yield Api(
            hub,
            c,
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Bearer {r.json()['access_token']}"},
        )


def entries(hub: Hub, target: str) -> list[AuditEntry]:
    with hub.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.target == target).order_by(AuditEntry.id)))


def run_case(api: Api, alarm_id: str) -> None:
    for i, (step, body) in enumerate(STEPS):
        headers = {**api.supervisor, "Idempotency-Key": f"step-{i}"}
        r = api.c.post(f"/api/v1/alarms/{alarm_id}/{step}", json=body, headers=headers)
        assert r.status_code == 200, r.text
        # the same request again (a retry): the first answer, no second entry
        assert api.c.post(f"/api/v1/alarms/{alarm_id}/{step}", json=body, headers=headers).status_code == 200
        # the same step as a new request: refused by the state (409), no entry either
        again = api.c.post(
            f"/api/v1/alarms/{alarm_id}/{step}",
            json=body,
            headers={**api.supervisor, "Idempotency-Key": f"again-{i}"},
        )
        assert again.status_code == 409, again.text


def test_every_step_of_a_case_is_audited_exactly_once(api: Api) -> None:
    alarm_id = raise_alarm(api.hub, "gw-1")
    run_case(api, alarm_id)
    log = entries(api.hub, f"alarm:{alarm_id}")
    assert [e.action for e in log] == [f"alarm.{step}" for step, _ in STEPS]
    assert {e.actor for e in log} == {"sd-01 desk [" + log[0].actor.split("[")[1]}
    assert {e.source for e in log} == {"127.0.0.1"}
    # each entry is one of the alarm's human history lines: same step, same states, in order
    with api.hub.sessions() as s:
        lines = s.scalars(
            select(AlarmTransition)
            .where(AlarmTransition.alarm_id == alarm_id, AlarmTransition.action.in_([st for st, _ in STEPS]))
            .order_by(AlarmTransition.seq)
        ).all()
    assert [(ln.action, ln.from_state, ln.to_state) for ln in lines] == [
        (e.action.removeprefix("alarm."), e.detail["from"], e.detail["to"]) for e in log if e.detail
    ]
    assert log[3].detail is not None and log[3].detail["outcome"] == "cooking_smoke"


def test_the_database_refuses_to_change_or_remove_an_entry(hub: Hub) -> None:
    with hub.sessions() as s, s.begin():
        audit.record(s, actor="cli", action="key.create", target="key:abc", source="cli")
    for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), hub.sessions() as s, s.begin():
            s.execute(text(sql))
    if hub.engine.dialect.name == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"), hub.sessions() as s, s.begin():
            s.execute(text("TRUNCATE audit_log"))
    with hub.sessions() as s:
        assert [(e.actor, e.action) for e in s.scalars(select(AuditEntry))] == [("cli", "key.create")]


def test_auditors_filter_and_export_the_log(api: Api) -> None:
    first, second = raise_alarm(api.hub, "gw-1"), raise_alarm(api.hub, "gw-2")
    for alarm_id in (first, second):
        r = api.c.post(
            f"/api/v1/alarms/{alarm_id}/acknowledge",
            json={},
            headers={**api.supervisor, "Idempotency-Key": alarm_id},
        )
        assert r.status_code == 200
    api.hub.clock.advance(minutes=5)
    api.c.post("/api/v1/auth/login", json={"username": "audrey", "password": "wrong password"})

    def get(**params: object) -> list[tuple[str, str]]:
        r = api.c.get("/api/v1/audit", params=params, headers=api.auditor)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        return [(e["action"], e["target"]) for e in r.json()["items"]]

    everything = get()
    assert everything[0] == ("login.failed", "user:audrey")  # newest first
    assert get(target=f"alarm:{second}") == [("alarm.acknowledge", f"alarm:{second}")]
    assert {a for a, _ in get(action="login.*")} == {"login.failed", "login.ok"}
    assert get(action="alarm.acknowledge", until=api.hub.clock.now().isoformat()) == [
        ("alarm.acknowledge", f"alarm:{second}"),
        ("alarm.acknowledge", f"alarm:{first}"),
    ]
    assert get(since=(api.hub.clock.now() - dt.timedelta(minutes=1)).isoformat()) == [
        ("login.failed", "user:audrey")
    ]
    actor = api.c.get(
        "/api/v1/audit", params={"limit": 1, "action": "alarm.acknowledge"}, headers=api.auditor
    ).json()["items"][0]["actor"]
    assert len(get(actor=actor)) == 2
    page = api.c.get("/api/v1/audit", params={"limit": 2}, headers=api.auditor).json()
    rest = api.c.get("/api/v1/audit", params={"cursor": page["next_cursor"]}, headers=api.auditor).json()
    assert [e["id"] for e in page["items"] + rest["items"]] == [
        e["id"] for e in api.c.get("/api/v1/audit", headers=api.auditor).json()["items"]
    ][: len(page["items"]) + len(rest["items"])]

    r = api.c.get("/api/v1/audit.csv", params={"action": "alarm.*"}, headers=api.auditor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["id", "at", "actor", "action", "target", "source", "detail"]
    assert [(row[3], row[4]) for row in rows[1:]] == [
        ("alarm.acknowledge", f"alarm:{first}"),
        ("alarm.acknowledge", f"alarm:{second}"),
    ]  # oldest first
    assert json.loads(rows[1][6])["to"] == "acknowledged"
    # the export itself is on the record; a supervisor may not read the log
    assert get(action="audit.export")[0] == ("audit.export", "audit")
    assert api.c.get("/api/v1/audit", headers=api.supervisor).status_code == 403
    assert api.c.get("/api/v1/audit.csv", headers=api.supervisor).status_code == 403


def test_command_line_changes_are_on_the_record(db_url: str, tmp_path: Path) -> None:
    """Changes made on the hub machine (register import, webhooks, tokens) name the CLI."""
    runner = CliRunner()
    register = tmp_path / "register.yaml"
    register.write_text(yaml.safe_dump(sample_register(homes=1), allow_unicode=True))
    assert runner.invoke(hub_cli, ["import", str(register), "--db-url", db_url]).exit_code == 0
    assert runner.invoke(hub_cli, ["import", str(register), "--db-url", db_url]).exit_code == 0  # no change
    key_file = tmp_path / "secrets.key"
    key_file.write_text(generate_key() + "\n")
    ws = sample_register(homes=1)["workstations"][0]["id"]
    r = runner.invoke(
        hub_cli,
        [
            "webhook",
            "add",
            "--url",
            "https://city.example/hook",
            "--region",
            f"workstation:{ws}",
            "--key-file",
            str(key_file),
            "--db-url",
            db_url,
        ],
    )
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    engine = make_engine(db_url)
    with make_session_factory(engine)() as s:
        wid = s.scalars(select(WebhookSubscription.id)).one()
    engine.dispose()
    assert runner.invoke(hub_cli, ["webhook", "disable", str(wid), "--db-url", db_url]).exit_code == 0
    r = runner.invoke(
        hub_cli, ["token", "create", "--role", "viewer", "--region", f"workstation:{ws}", "--db-url", db_url]
    )
    assert r.exit_code == 0, r.output
    engine = make_engine(db_url)
    with make_session_factory(engine)() as s:
        log = [
            (e.actor, e.action, e.target, e.source)
            for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
        detail = " ".join(str(e.detail) for e in s.scalars(select(AuditEntry)))
    engine.dispose()
    assert [a for _, a, _, _ in log] == [
        "registry.import",
        "webhook.create",
        "webhook.disable",
        "token.create",
    ]
    assert {(actor, source) for actor, _, _, source in log} == {("cli", "cli")}
    assert log[1][2] == f"webhook:{wid}" and secret not in detail
