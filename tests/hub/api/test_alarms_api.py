"""The alarm API on a real database: token → role + region scoping (404, never 403, for
other regions), filters, cursor pagination, lifecycle POSTs with idempotency keys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import get_args

import httpx
from click.testing import CliRunner
from sqlalchemy import func, select

from hub.alarms.engine.decide import event_signal
from hub.alarms.lifecycle import Outcome
from hub.alarms.store.models import Alarm, AlarmTransition
from hub.api.app import make_api_app
from hub.api.context import ApiContext
from hub.api.models import ApiToken
from hub.api.schemas import ResolveOutcome
from hub.api.tokens import hash_token
from hub.cli import hub as hub_cli
from hub.notify.models import Notification
from hub.sealing import SecretBox, generate_key
from protocols import Event, EventKind, EventState, new_event_id
from tests.hub.api.conftest import Api
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app


def ids(resp) -> set[str]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    return {a["id"] for a in resp.json()["items"]}


def test_every_route_needs_a_valid_token(api: Api) -> None:
    for path in ("/api/v1/alarms", f"/api/v1/alarms/{api.alarms['gw-1']}", "/api/v1/me"):
        assert api.client.get(path).status_code == 401
        assert api.client.get(path, headers={"Authorization": "Bearer shk_nope_nope"}).status_code == 401
    r = api.client.post(
        f"/api/v1/alarms/{api.alarms['gw-1']}/acknowledge", headers={"Idempotency-Key": "k"}, json={}
    )
    assert r.status_code == 401
    assert api.get("ws1", "/api/v1/me").json()["region"] == "workstation:ws-0001"


def test_tokens_are_stored_hashed(api: Api) -> None:
    with api.hub.sessions() as s:
        stored = {t.token_hash for t in s.scalars(select(ApiToken))}
    assert api.tokens["ws1"] not in str(stored)
    assert hash_token(api.tokens["ws1"]) in stored


def test_list_is_scoped_by_region(api: Api) -> None:
    a = api.alarms
    assert ids(api.get("ws1", "/api/v1/alarms")) == {a["gw-1"]}
    assert ids(api.get("ws2", "/api/v1/alarms")) == {a["gw-2"]}
    assert ids(api.get("sd1", "/api/v1/alarms")) == {a["gw-1"], a["gw-2"]}
    assert ids(api.get("sd2", "/api/v1/alarms")) == {a["gw-3"]}
    assert ids(api.get("district", "/api/v1/alarms")) == set(a.values())
    # a filter naming another region narrows to nothing, it never widens the scope
    assert ids(api.get("ws1", "/api/v1/alarms", params={"workstation_id": "ws-0002"})) == set()
    assert ids(api.get("ws1", "/api/v1/alarms", params={"gateway_id": "gw-2"})) == set()


def test_other_regions_alarm_is_404_not_403(api: Api) -> None:
    other = api.alarms["gw-2"]
    missing = api.get("ws1", "/api/v1/alarms/does-not-exist")
    foreign = api.get("ws1", f"/api/v1/alarms/{other}")
    assert foreign.status_code == missing.status_code == 404
    # indistinguishable (but for the path the problem names as its instance)
    assert foreign.json() | {"instance": ""} == missing.json() | {"instance": ""}
    r = api.post("ws1", f"/api/v1/alarms/{other}/acknowledge", "k1")
    assert r.status_code == 404
    with api.hub.sessions() as s:
        assert s.get(Alarm, other).state == "raised"  # type: ignore[union-attr]


def test_detail_has_full_history_and_deliveries(api: Api) -> None:
    a = api.alarms["gw-1"]
    assert (
        api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "k1", {"note": "calling the resident"}).status_code
        == 200
    )
    d = api.get("ws1", f"/api/v1/alarms/{a}").json()
    assert [h["action"] for h in d["history"]] == ["raise", "acknowledge"]
    assert (
        d["history"][1]["actor"].startswith("ws1 desk") and d["history"][1]["note"] == "calling the resident"
    )
    assert {
        "channel": "console",
        "role": "workstation",
        "tier": "initial",
        "status": "pending",
        "attempts": 0,
    } in d["notifications"]


def test_lifecycle_over_http_with_refusals_and_roles(api: Api) -> None:
    a = api.alarms["gw-1"]
    r = api.post("ws1", f"/api/v1/alarms/{a}/dispatch", "k0", {"responder": "Li"})
    assert r.status_code == 409 and r.json()["error"] == "not_acknowledged"
    assert api.post("ws1-viewer", f"/api/v1/alarms/{a}/acknowledge", "kv").status_code == 403
    assert api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "k1").json()["state"] == "acknowledged"
    assert (
        api.post("ws1", f"/api/v1/alarms/{a}/dispatch", "k2", {"responder": "Li"}).json()["responder"] == "Li"
    )
    assert api.post("ws1", f"/api/v1/alarms/{a}/arrive", "k3").status_code == 200
    r = api.post("ws1", f"/api/v1/alarms/{a}/resolve", "k4", {"outcome": "false_press"})
    assert r.json()["outcome"] == "false_press"
    assert api.post("ws1", f"/api/v1/alarms/{a}/review", "k5").status_code == 403  # supervisors review
    assert api.post("sd1", f"/api/v1/alarms/{a}/review", "k6", {"note": "ok"}).json()["state"] == "reviewed"
    assert api.post("ws1", f"/api/v1/alarms/{a}/resolve", "k7", {"outcome": "nonsense"}).status_code == 422
    assert api.post("ws1", f"/api/v1/alarms/{a}/explode", "k8").status_code == 404  # no such step


def test_each_step_names_the_fields_it_needs(api: Api) -> None:
    """A step's own body schema refuses a missing or foreign field as a 422 naming it,
    before the alarm is looked at (no 409 found only at run time)."""
    a = api.alarms["gw-1"]
    cases = [
        ("dispatch", {}, "body.responder", "missing"),
        ("dispatch", {"responder": " "}, "body.responder", "string_pattern_mismatch"),
        ("resolve", {}, "body.outcome", "missing"),
        ("resolve", {"outcome": "restored"}, "body.outcome", "literal_error"),  # the hub's own outcome
        ("acknowledge", {"outcome": "test"}, "body.outcome", "extra_forbidden"),
        ("arrive", {"responder": "Li"}, "body.responder", "extra_forbidden"),
    ]
    for n, (step, body, field, kind) in enumerate(cases):
        r = api.post("ws1", f"/api/v1/alarms/{a}/{step}", f"f{n}", body)
        assert r.status_code == 422, (step, r.text)
        assert [(e["field"], e["type"]) for e in r.json()["errors"]] == [(field, kind)], (step, r.text)
    with api.hub.sessions() as s:
        assert s.get(Alarm, a).state == "raised"  # type: ignore[union-attr]


def test_a_person_may_record_every_outcome_but_restored() -> None:
    assert set(get_args(ResolveOutcome)) == {o.value for o in Outcome} - {Outcome.RESTORED.value}


def test_openapi_has_one_operation_per_step_with_its_own_body(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    required = {}
    for step in ("acknowledge", "dispatch", "arrive", "resolve", "review"):
        op = spec["paths"][f"/api/v1/alarms/{{alarm_id}}/{step}"]["post"]
        assert op["operationId"] == f"{step}_alarm"
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        required[step] = set(schemas[ref.rsplit("/", 1)[1]].get("required", []))
        assert {"403", "404", "409", "422"} <= set(op["responses"])
    assert required == {
        "acknowledge": set(), "dispatch": {"responder"}, "arrive": set(), "resolve": {"outcome"}, "review": set()
    }
    assert not any("{action}" in path for path in spec["paths"])


def test_idempotency_key_replays_first_answer(api: Api) -> None:
    a = api.alarms["gw-1"]
    first = api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "same-key", {"note": "n"})
    again = api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "same-key", {"note": "n"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    with api.hub.sessions() as s:
        n = s.scalar(
            select(func.count())
            .select_from(AlarmTransition)
            .where(AlarmTransition.alarm_id == a, AlarmTransition.action == "acknowledge")
        )
        homes = s.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.alarm_id == a, Notification.channel == "home")
        )
    assert n == 1 and homes == 1
    # a new key for the same step is a new request: refused, it is already done
    r = api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "other-key", {"note": "n"})
    assert r.status_code == 409 and r.json()["error"] == "already_done"
    # same key, different request
    assert api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "same-key", {"note": "x"}).status_code == 422
    # keys are per token: another operator's "same-key" is their own
    assert (
        api.post("sd1", f"/api/v1/alarms/{a}/dispatch", "same-key", {"responder": "Wang"}).status_code == 200
    )
    assert (
        api.client.post(
            f"/api/v1/alarms/{a}/arrive", headers={"Authorization": f"Bearer {api.tokens['ws1']}"}, json={}
        ).status_code
        == 422
    )


def test_filters_and_cursor_pagination(api: Api) -> None:
    h = api.hub
    more = []
    for _ in range(5):
        h.clock.advance(1)
        more.append(raise_alarm(h, "gw-1", EventKind.PANIC, "panic-1"))
        h.alarms.handle(
            *event_signal(
                Event(
                    gw="gw-1",
                    seq=1,
                    id=new_event_id(),
                    ts=1,
                    synced=True,
                    sensor="panic-1",
                    kind=EventKind.PANIC,
                    state=EventState.RESTORE,
                ),
                h.clock.now(),
            )
        )
        # close it so the next panic opens a new alarm
        for step, body in (("acknowledge", {}), ("resolve", {"outcome": "false_press"})):
            assert (
                api.post("ws1", f"/api/v1/alarms/{more[-1]}/{step}", f"{more[-1]}-{step}", body).status_code
                == 200
            )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "kind": "panic"} | ({"cursor": cursor} if cursor else {})
        page = api.get("ws1", "/api/v1/alarms", params=params).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(more))  # newest first, each once
    assert ids(api.get("ws1", "/api/v1/alarms", params={"open": "true"})) == {api.alarms["gw-1"]}
    assert ids(api.get("ws1", "/api/v1/alarms", params={"state": "resolved"})) == set(more)
    since = (h.clock.now() - dt.timedelta(seconds=2)).isoformat()
    assert (
        len(ids(api.get("ws1", "/api/v1/alarms", params={"since": since}))) == 3
    )  # raised at now-2, now-1, now
    r = api.get("ws1", "/api/v1/alarms", params={"cursor": "%%%"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["query.cursor"]


def test_token_cli_create_and_revoke(hub: Hub) -> None:
    runner = CliRunner()
    r = runner.invoke(
        hub_cli,
        ["token", "create", "--role", "operator", "--region", "workstation:ws-0003", "--db-url", hub.url],
    )
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("shk_")
    bad = runner.invoke(
        hub_cli,
        ["token", "create", "--role", "operator", "--region", "workstation:nope", "--db-url", hub.url],
    )
    assert bad.exit_code != 0 and "no workstation 'nope'" in bad.output
    bad = runner.invoke(
        hub_cli, ["token", "create", "--role", "operator", "--region", "planet:x", "--db-url", hub.url]
    )
    assert bad.exit_code != 0
    app = make_api_app(ApiContext(hub.sessions, hub.clock))
    with serve_app(app) as base, httpx.Client(base_url=base) as c:
        assert (
            c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["region"]
            == "workstation:ws-0003"
        )
        tid = token.split("_")[1]
        assert runner.invoke(hub_cli, ["token", "revoke", tid, "--db-url", hub.url]).exit_code == 0
        assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_kpis_are_scoped_and_computed_from_the_record(api: Api) -> None:
    a = api.alarms["gw-1"]
    api.hub.clock.advance(30)
    assert api.post("ws1", f"/api/v1/alarms/{a}/acknowledge", "k1").status_code == 200
    api.hub.clock.advance(90)
    assert api.post("ws1", f"/api/v1/alarms/{a}/dispatch", "k2", {"responder": "Li"}).status_code == 200
    assert (
        api.post("ws1", f"/api/v1/alarms/{a}/resolve", "k3", {"outcome": "cooking_smoke"}).status_code == 200
    )
    since = "2026-01-01T00:00:00Z"
    k = api.get("ws1", "/api/v1/kpis", params={"since": since}).json()
    assert k["alarms"] == 1 and k["acknowledged_within_60s"] == 1.0
    assert k["time_to_acknowledge"]["median_s"] == 30 and k["time_to_dispatch"]["median_s"] == 120
    assert k["false_alarm_rates"]["device_model"] == {
        "smoke-dry-contact": {"resolved": 1, "false": 1, "rate": 1.0}
    }
    d = api.get("district", "/api/v1/kpis", params={"since": since}).json()
    assert d["alarms"] == 3 and d["acknowledged_within_60s"] == 1 / 3  # two never acknowledged
    # one workstation of the region (the console's comparison); never another region's
    one = api.get("district", "/api/v1/kpis", params={"since": since, "workstation_id": "ws-0001"}).json()
    assert one["alarms"] == 1 and one["acknowledged_within_60s"] == 1.0
    other = api.get("ws1", "/api/v1/kpis", params={"since": since, "workstation_id": "ws-0002"}).json()
    assert other["alarms"] == 0
    assert api.get("ws1", "/api/v1/kpis").status_code == 422


def test_webhook_cli_add_list_disable(hub: Hub, tmp_path: Path) -> None:
    from hub.alarms.store.models import WebhookSubscription

    key_file = tmp_path / "secrets.key"
    key_file.write_text(generate_key() + "\n")
    runner = CliRunner()
    add = ["webhook", "add", "--url", "http://127.0.0.1:9/hook", "--region", "subdistrict:sd-01", "--db-url", hub.url]
    r = runner.invoke(hub_cli, [*add, "--key-file", str(key_file)])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert len(secret) >= 32
    with hub.sessions() as s:
        (w,) = s.scalars(select(WebhookSubscription)).all()
        assert (w.region_kind, w.region_id, w.active) == ("subdistrict", "sd-01", True)
        assert secret not in w.secret_sealed  # stored sealed, never in clear
        assert SecretBox([key_file.read_text().strip()]).open(w.secret_sealed) == secret
    assert "subdistrict:sd-01" in runner.invoke(hub_cli, ["webhook", "list", "--db-url", hub.url]).stdout
    again = runner.invoke(hub_cli, [*add, "--key-file", str(key_file)])  # one active subscription per URL
    assert again.exit_code != 0 and "already posts to http://127.0.0.1:9/hook" in again.output
    assert runner.invoke(hub_cli, ["webhook", "disable", str(w.id), "--db-url", hub.url]).exit_code == 0
    bad = runner.invoke(
        hub_cli, ["webhook", "add", "--url", "ftp://x", "--region", "subdistrict:sd-01", "--db-url", hub.url]
    )
    assert bad.exit_code != 0
    bad = runner.invoke(
        hub_cli,
        ["webhook", "add", "--url", "http://x", "--region", "subdistrict:nope", "--db-url", hub.url],
        env={"SAFEHOME_HUB_SECRETS__KEY_FILE": str(key_file)},
    )
    assert bad.exit_code != 0 and "no subdistrict" in bad.output
    # a weak secret, and no key at all, are refused naming what is wrong
    weak = runner.invoke(hub_cli, [*add, "--key-file", str(key_file), "--secret", "short-secret"])
    assert weak.exit_code != 0 and "--secret is too short (12 characters, at least 32)" in weak.output
    nokey = runner.invoke(hub_cli, add, env={"SAFEHOME_HUB_SECRETS__KEY_FILE": "", "SAFEHOME_HUB_SECRETS__KEY": ""})
    assert nokey.exit_code != 0 and "SAFEHOME_HUB_SECRETS__KEY_FILE" in nokey.output
