"""Every JSON example in docs/ is checked against the code it documents.

A ```json block must follow a marker ``<!-- example: NAME -->`` naming what it is:
a protocol channel (``event``, ``ack``, …: decoded with :mod:`protocols`), or one of
:data:`VALIDATORS` below. A block without a marker, or with a name nobody validates,
fails here: a vendor or an integrator copies these examples, so none may drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import protocols as p
from hub.alarms.event_schema import AlarmEvent
from hub.api.audit_api import AuditPage
from hub.api.commands import CommandOut
from hub.api.gateways import GatewayDetail
from hub.api.homes import HomeCard
from hub.api.keys import KeyCreated
from hub.api.problems import Problem
from hub.api.readings import Readings
from hub.api.users_api import TokensOut
from hub.api.webhooks_schemas import DeliveryDetail, WebhookCreate, WebhookCreated

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```json\s*$", re.M)
MARKER = re.compile(r"<!-- example: ([\w.:-]+) -->\s*\Z")


def _protocol(channel: str) -> Callable[[str], object]:
    def check(body: str) -> object:
        return p.decode(p.Channel(channel), body)

    return check


#: name → a check that raises when the example is not what the code accepts or produces.
VALIDATORS: dict[str, Callable[[str], object]] = {c.value: _protocol(c.value) for c in p.Channel}
VALIDATORS["api.problem"] = Problem.model_validate_json
VALIDATORS["api.alarm_event"] = AlarmEvent.model_validate_json


def _same_keys(doc: Any, made: Any, where: str = "") -> None:
    """The example has exactly the fields the API answers with, at every level."""
    if isinstance(doc, dict) and isinstance(made, dict):
        assert set(doc) == set(made), f"{where or 'top level'}: doc {sorted(doc)} != API {sorted(made)}"
        for k in doc:
            _same_keys(doc[k], made[k], f"{where}.{k}")
    elif isinstance(doc, list) and isinstance(made, list):
        for i, (d, m) in enumerate(zip(doc, made, strict=True)):
            _same_keys(d, m, f"{where}[{i}]")


def _response(model: Any) -> Callable[[str], object]:
    def check(body: str) -> object:
        doc = orjson.loads(body)
        made = model.model_validate(doc)
        _same_keys(doc, made.model_dump(mode="json"))
        return made

    return check


VALIDATORS["api.home_card"] = _response(HomeCard)
VALIDATORS["api.gateway"] = _response(GatewayDetail)
VALIDATORS["api.command"] = _response(CommandOut)
VALIDATORS["api.readings"] = _response(Readings)
VALIDATORS["api.webhook_create"] = WebhookCreate.model_validate_json
VALIDATORS["api.webhook_created"] = _response(WebhookCreated)
VALIDATORS["api.webhook_delivery"] = _response(DeliveryDetail)
VALIDATORS["api.tokens"] = _response(TokensOut)
VALIDATORS["api.key_created"] = _response(KeyCreated)
VALIDATORS["api.audit_page"] = _response(AuditPage)


def blocks() -> list[tuple[str, str, str]]:
    """(where, marker name or "", body) for every ```json block of docs/*.md."""
    out = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text()
        for m in FENCE.finditer(text):
            end = text.index("```", m.end())
            line = text.count("\n", 0, m.start()) + 1
            marker = MARKER.search(text[: m.start()].rstrip(" \n") + "\n")
            out.append((f"{doc.name}:{line}", marker.group(1) if marker else "", text[m.end() : end]))
    return out


def test_the_docs_have_json_examples() -> None:
    assert len(blocks()) >= 8  # not vacuous: protocol.md alone has more


@pytest.mark.parametrize(("where", "name", "body"), blocks(), ids=[b[0] for b in blocks()])
def test_json_example_is_validated(where: str, name: str, body: str) -> None:
    assert name, f"{where}: a ```json block needs a <!-- example: NAME --> marker before it"
    assert name in VALIDATORS, f"{where}: no validator for example {name!r}; add one to VALIDATORS"
    orjson.loads(body)  # valid JSON first, for a clearer error
    VALIDATORS[name](body)


def test_an_unmarked_or_wrong_example_is_caught(tmp_path: Path) -> None:
    """The marker regex and the protocol validators reject what they must."""
    assert MARKER.search("text\n<!-- example: ack -->\n") is not None
    assert MARKER.search("<!-- example: ack -->\nmore prose\n") is None
    with pytest.raises(p.ProtocolError):
        VALIDATORS["ack"]('{"v": "1.0", "gw": "gw-1", "ts": 1, "items": [{"id": "x", "status": "stored"}]}')


def test_a_response_example_with_a_misspelt_field_is_caught() -> None:
    good = '{"since": "2026-11-30T08:00:00Z", "until": "2026-12-01T08:00:00Z", "every_s": null, "series": []}'
    VALIDATORS["api.readings"](good)
    with pytest.raises(AssertionError, match="sereis"):  # pydantic alone would ignore it
        VALIDATORS["api.readings"](good.replace('"series": []', '"series": [], "sereis": []'))
