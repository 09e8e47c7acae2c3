"""No control characters in any text the API is given: one router-level dependency checks
every path parameter, query parameter, header and JSON string (keys too) of every request,
so that a new route cannot forget it.

NUL is the reason: PostgreSQL refuses it in text (the API answered 500) while SQLite stores
it, and neither a log line nor an operator's console shows it. Other C0/C1 controls (ESC
sequences in a note end up in terminals) and lone UTF-16 surrogates (valid JSON escapes,
not encodable as UTF-8, PostgreSQL again) go the same way. Tab, line feed and carriage
return stay allowed: notes are multi-line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
ALLOWED = "tab, line feed and carriage return"


def first_forbidden(text: str) -> tuple[int, str] | None:
    """Position and character of the first forbidden character in ``text``, else None."""
    m = _FORBIDDEN.search(text)
    return None if m is None else (m.start(), m.group())


def _strings(value: Any, loc: tuple[int | str, ...]) -> Iterator[tuple[tuple[int | str, ...], str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*loc, str(k)), str(k)
            yield from _strings(v, (*loc, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*loc, i))


async def _inputs(request: Request) -> list[tuple[tuple[int | str, ...], str]]:
    found: list[tuple[tuple[int | str, ...], str]] = []
    found += [(("path", k), str(v)) for k, v in request.path_params.items()]
    for k, v in request.query_params.multi_items():
        found += [(("query", k), k), (("query", k), v)]
    found += [(("header", k), v) for k, v in request.headers.items()]
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()  # cached: the route's own parsing reuses it
        except ValueError:
            body = None  # FastAPI answers malformed JSON itself
        found += list(_strings(body, ("body",)))
    return found


def error_entry(loc: tuple[int | str, ...], pos: int, char: str) -> dict[str, Any]:
    return {
        "type": "control_character",
        "loc": loc,
        "msg": f"contains U+{ord(char):04X} at position {pos}; control characters other than {ALLOWED} "
        "are not accepted",
        "input": None,
    }


async def plain_text(request: Request) -> None:
    """Refuse the request with 422 naming every field that holds a forbidden character."""
    errors = []
    for loc, text in await _inputs(request):
        bad = first_forbidden(text)
        if bad is not None:
            errors.append(error_entry(loc, *bad))
    if errors:
        raise RequestValidationError(errors)
