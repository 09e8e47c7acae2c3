"""Every error the API answers is an RFC 9457 problem (``application/problem+json``), built
here and only here: HTTP errors, validation errors (naming each field), refused lifecycle
steps and an unreachable database (503 with ``Retry-After``, never a 500).

A problem carries the RFC's ``type``, ``title``, ``status``, ``detail`` and ``instance``,
and the extension members ``error`` (a stable machine code, also the last part of
``type``), ``state`` (409: the alarm's state) and ``errors`` (422: one entry per field).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from hub.alarms.errors import AlarmError
from hub.db.errors import RetriesExhausted

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:safehome:problem:"
#: Seconds a client should wait before retrying while the database is unreachable: long
#: enough not to hammer a restarting PostgreSQL, short enough for an operator's console.
RETRY_AFTER_S = 5
#: The database errors that mean "not reachable / not usable right now" (connection
#: refused or lost, pool exhausted, SQLite file missing or locked past its busy timeout).
UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)

#: Machine codes of the plain HTTP errors.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "content_too_large",
    422: "invalid_input",
    503: "database_unavailable",
}


class FieldError(BaseModel):
    field: str = Field(description="where: body.note, query.since, path.alarm_id, header.idempotency-key")
    message: str
    type: str = Field(description="pydantic's error type, or control_character")


class Problem(BaseModel):
    """RFC 9457 problem details; ``error`` is the machine code (``type`` ends with it)."""

    model_config = ConfigDict(extra="forbid")  # docs/api.md's example is checked against it

    type: str = Field(description="urn:safehome:problem:<error>")
    title: str
    status: int
    detail: str
    error: str
    instance: str | None = Field(default=None, description="the request path")
    state: str | None = Field(default=None, description="409: the alarm's current state")
    errors: list[FieldError] | None = Field(default=None, description="422: every invalid field")


class ApiProblem(HTTPException):
    """An HTTP error with a machine code of its own (e.g. 422 ``idempotency_key_reused``)."""

    def __init__(
        self, status_code: int, error: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.error = error


def problem(
    status: int,
    detail: str,
    error: str | None = None,
    *,
    instance: str | None = None,
    state: str | None = None,
    errors: Sequence[FieldError] | None = None,
) -> Problem:
    code = error or CODES.get(status, HTTPStatus(status).name.lower())
    return Problem(
        type=TYPE_PREFIX + code,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        error=code,
        instance=instance,
        state=state,
        errors=list(errors) if errors is not None else None,
    )


def problem_response(p: Problem, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        p.model_dump(mode="json", exclude_none=True), p.status, headers=headers, media_type=MEDIA_TYPE
    )


def field_name(loc: Sequence[int | str]) -> str:
    """``("body", "note")`` → ``body.note``; list positions in brackets: ``query.state[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problem(errors: Sequence[Any], instance: str | None = None) -> Problem:
    fields = [
        FieldError(
            field=field_name(e.get("loc", ())), message=str(e.get("msg", "invalid")), type=str(e.get("type"))
        )
        for e in errors
    ]
    detail = "; ".join(f"{f.field}: {f.message}" for f in fields) or "invalid input"
    return problem(422, detail, instance=instance, errors=fields)


def invalid_field(
    loc: tuple[int | str, ...], message: str, type_: str = "value_error"
) -> RequestValidationError:
    """A 422 naming one field (raise it), for checks pydantic cannot express."""
    return RequestValidationError([{"type": type_, "loc": loc, "msg": message, "input": None}])


def error_doc(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry of a problem answer."""
    return {"description": description, "model": Problem, "content": {MEDIA_TYPE: {}}}


_doc = error_doc


#: OpenAPI ``responses`` shared by every API route.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _doc("missing, invalid, revoked or expired bearer token"),
    413: _doc("request body over [hub.http] max_body_bytes"),
    422: _doc("invalid input; `errors` names every field"),
    503: _doc("database unreachable; retry after `Retry-After` seconds"),
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    error = exc.error if isinstance(exc, ApiProblem) else None
    p = problem(exc.status_code, detail, error, instance=request.url.path)
    return problem_response(p, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc.errors(), request.url.path))


def _unavailable_cause(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UNAVAILABLE):
            return seen
        seen = seen.__cause__
    return None


def unavailable_response(request: Request, cause: BaseException) -> JSONResponse:
    # The driver's message names host and port (never the password); one line, no traceback.
    log.error(
        "API %s %s: database unavailable: %s", request.method, request.url.path, str(cause).splitlines()[0]
    )
    p = problem(503, "the database is not reachable; retry later", instance=request.url.path)
    return problem_response(p, {"Retry-After": str(RETRY_AFTER_S)})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    cause = _unavailable_cause(exc)
    if cause is None:  # an AlarmError of another kind: a real server error
        raise exc
    return unavailable_response(request, cause)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every HTTP, validation and database-unavailable error of ``app`` as a problem."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for cls in (*UNAVAILABLE, AlarmError, RetriesExhausted):  # in_transaction gave up on a dead database
        app.add_exception_handler(cls, _database_error)
