"""schemathesis against the running API (uvicorn on a free port, a real database, a real
broker for gateway commands): every operation of its OpenAPI document, called as a
district admin (console user; the audit log's as an auditor), with generated valid and
invalid input. No answer may be a 5xx, carry a status code the operation does not
document, or differ from its documented schema or media type.

Bounded: ``MAX_EXAMPLES`` cases per operation and generation mode (about a minute per database
here, on a loaded 2-core machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub.alarms.store.models import WebhookSubscription
from hub.api.app import make_api_app
from hub.api.command_mqtt import MqttCommandSender
from hub.api.context import ApiContext
from hub.api.users import create_user, login
from hub.notify.enqueue import Outgoing, enqueue
from hub.sealing import dev_box
from hub.settings import MqttSettings
from hub.timeseries.sql import SqlTimeSeriesStore
from safehome.testing.mosquitto import Mosquitto
from tests.hub.conftest import Hub, raise_alarm
from tests.support.http import serve_app

#: Cases generated per operation (and per database): enough to reach every field's edge
#: cases (empty, too long, wrong type, control characters) with the run kept short.
MAX_EXAMPLES = 15
#: A district admin: every scope but reading the audit log (the audit routes answer 403,
#: which is checked too).
PASSWORD = "correct horse battery staple 42"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Operations not fuzzed here, and why (each has its own tests).
SKIP = {
    ("GET", "/api/v1/alarms/stream"): "an endless event stream (tests/hub/api/test_stream.py)",
}


@dataclass
class Target:
    base: str
    schema: schemathesis.schemas.BaseSchema
    headers: dict[str, str]
    #: the audit log's operations are called as an auditor (a district admin may not read it)
    auditor: dict[str, str]
    #: path parameter → an object that exists in the caller's region (a second pass of each
    #: operation uses them, so that generated bodies reach the step, not only the 404)
    known: dict[str, str]


@pytest.fixture
def target(hub: Hub, mosquitto: Mosquitto) -> Iterator[Target]:
    with hub.sessions() as s, s.begin():
        create_user(s, "admin", PASSWORD, "district_admin", "district:pudong", hub.clock.now())
        create_user(s, "auditor", PASSWORD, "auditor", "district:pudong", hub.clock.now())
        hook = WebhookSubscription(
            url="http://127.0.0.1:9/hook", secret_sealed=dev_box().seal("x" * 43), region_kind="district",
            region_id="pudong",
        )  # fmt: skip
        s.add(hook)
        s.flush()
        (delivery,) = enqueue(
            s, None, [Outgoing("webhook", hook.url, "webhook")], {"event": "ping"}, hub.clock.now()
        )
        known = {"webhook_id": str(hook.id), "delivery_id": delivery, "gateway_id": "gw-1"}
    known["alarm_id"] = raise_alarm(hub, "gw-1")
    raise_alarm(hub, "gw-2")  # some alarms, so that list and detail answers have content
    # the context a hub worker gives the API: gateway commands over a real broker, readings
    # from the SQL time-series store, webhook secrets sealed
    commands = MqttCommandSender(MqttSettings(port=mosquitto.port), "schemathesis-commands")
    ctx = ApiContext(
        hub.sessions,
        hub.clock,
        secret_box=dev_box(),
        timeseries=SqlTimeSeriesStore(hub.engine),
        commands=commands,
    )
    admin, auditor = (login(ctx, who, PASSWORD, "127.0.0.1").access_token for who in ("admin", "auditor"))
    with serve_app(make_api_app(ctx)) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        yield Target(
            base, schema, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {auditor}"}, known
        )


def check(
    target: Target, strategy: st.SearchStrategy[schemathesis.Case[Any]], headers: dict[str, str]
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=target.base, headers=headers, checks=CHECKS, timeout=10)

    run()


def test_every_operation_answers_as_documented(target: Target) -> None:
    ran = []
    for result in target.schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document is valid
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue

        names = {p.name for p in op.path_parameters}
        strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
        if names and names <= set(target.known):
            fixed = {n: target.known[n] for n in names}
            strategies.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
        headers = target.auditor if op.path.startswith("/api/v1/audit") else target.headers
        for strategy in strategies:
            check(target, strategy, headers)
        ran.append((op.method.upper(), op.path))
    # not vacuous: the alarm, lifecycle, webhook and provisioning operations were all called
    paths = {p for _, p in ran}
    assert {
        "/api/v1/alarms",
        "/api/v1/alarms/{alarm_id}/dispatch",
        "/api/v1/webhooks",
        "/api/v1/audit",
    } <= paths
    assert len(ran) >= 20, ran
