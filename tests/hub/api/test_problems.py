"""Error answers of the API over real HTTP: RFC 9457 problem bodies (401/403/404/409/422),
the request body limit (413 before the body is read, before the token check), and 503 with
``Retry-After`` when the database is not reachable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.api.app import MAX_BODY_BYTES, make_api_app
from hub.api.context import ApiContext
from hub.api.problems import RETRY_AFTER_S
from hub.db.engine import make_engine, make_session_factory
from safehome.testing.mosquitto import free_port
from tests.hub.api.conftest import Api
from tests.hub.conftest import Hub
from tests.support.http import serve_app

PROBLEM = "application/problem+json"
RFC_MEMBERS = {"type", "title", "status", "detail", "instance"}


def assert_problem(r: httpx.Response, status: int, error: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, object] = r.json()
    assert set(body) >= RFC_MEMBERS, body
    assert body["status"] == status and body["error"] == error
    assert body["type"] == f"urn:safehome:problem:{error}"
    return body


def test_404_401_403_409_422_are_problems(api: Api) -> None:
    body = assert_problem(api.get("ws1", "/api/v1/alarms/nope"), 404, "not_found")
    assert body["instance"] == "/api/v1/alarms/nope" and body["detail"] == "no such alarm"

    r = api.client.get("/api/v1/me")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"

    alarm = api.alarms["gw-1"]
    assert_problem(api.post("ws1-viewer", f"/api/v1/alarms/{alarm}/acknowledge", "k1"), 403, "forbidden")

    r = api.post("ws1", f"/api/v1/alarms/{alarm}/dispatch", "k2", {"responder": "volunteer Li"})
    body = assert_problem(r, 409, "not_acknowledged")
    assert body["state"] == "notified" or body["state"] == "raised"

    body = assert_problem(api.get("ws1", "/api/v1/alarms", params={"limit": 0}), 422, "invalid_input")
    assert body["errors"] == [
        {
            "field": "query.limit",
            "message": "Input should be greater than or equal to 1",
            "type": "greater_than_equal",
        }
    ]
    assert "query.limit" in str(body["detail"])
    body = assert_problem(
        api.get("ws1", "/api/v1/alarms", params={"since": "2026-01-01T00:00"}), 422, "invalid_input"
    )
    assert body["errors"] == [
        {"field": "query.since", "message": "needs a timezone (e.g. Z)", "type": "value_error"}
    ]
    r = api.post("ws1", f"/api/v1/alarms/{alarm}/acknowledge", "k3", {"note": 1, "extra": "x"})
    fields = {e["field"] for e in assert_problem(r, 422, "invalid_input")["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.note", "body.extra"}


def _raw(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send a request head (and a body prefix) on a raw socket; the server's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


@pytest.fixture
def api_port(hub: Hub) -> Iterator[int]:
    with serve_app(make_api_app(ApiContext(hub.sessions, hub.clock))) as base:
        yield int(base.rpartition(":")[2])


def test_content_length_over_the_limit_is_refused_at_once(api_port: int) -> None:
    # No token and no body at all: the answer comes before the token check, without waiting
    # for a single byte of the 1 GB announced.
    head = (
        b"POST /api/v1/alarms/x/acknowledge HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    answer = _raw(api_port, head)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"application/problem+json" in answer


def test_chunked_body_over_the_limit_is_refused_while_it_streams(api_port: int) -> None:
    # The client sends a little more than the limit in 1 KiB chunks and then stops sending
    # (no terminating chunk): the 413 arrives anyway, so the server neither waited for the
    # whole body nor read it in full.
    head = (
        b"POST /api/v1/alarms/x/acknowledge HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
    answer = _raw(api_port, head, chunk * (MAX_BODY_BYTES // 1024 + 2))
    assert answer.startswith(b"HTTP/1.1 413 "), answer


def test_a_body_under_the_limit_is_read(api: Api) -> None:
    alarm = api.alarms["gw-1"]
    r = api.post("ws1", f"/api/v1/alarms/{alarm}/acknowledge", "k", {"note": "x" * 2000})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://safehome@127.0.0.1:{port}/safehome", id="postgres-closed-port"),
        pytest.param("sqlite:///{tmp}/gone/hub.db", id="sqlite-missing-file"),
    ],
)
def test_database_unavailable_is_503_with_retry_after(url: str, tmp_path: Path) -> None:
    kw = {"connect_args": {"connect_timeout": 2}} if url.startswith("postgresql") else {}
    engine = make_engine(url.format(port=free_port(), tmp=tmp_path), **kw)  # type: ignore[arg-type]
    try:
        with serve_app(make_api_app(ApiContext(make_session_factory(engine)))) as base:
            r = httpx.get(
                f"{base}/api/v1/me", headers={"Authorization": "Bearer shk_0123456789ab_x"}, timeout=30
            )
    finally:
        engine.dispose()
    body = assert_problem(r, 503, "database_unavailable")
    assert r.headers["retry-after"] == str(RETRY_AFTER_S)
    assert "retry" in str(body["detail"])


def test_postgres_going_away_under_a_running_api_is_503(api: Api, request: pytest.FixtureRequest) -> None:
    if not api.hub.url.startswith("postgresql"):
        pytest.skip("a SQLite file open in the pool does not go away")
    alarm = api.alarms["gw-1"]
    assert api.get("ws1", "/api/v1/me").status_code == 200  # pooled connections are live
    request.getfixturevalue("pg_server").drop_database(api.hub.url)  # terminates them, then drops
    for r in (
        api.get("ws1", "/api/v1/me"),
        api.get("ws1", f"/api/v1/alarms/{alarm}"),
        api.post("ws1", f"/api/v1/alarms/{alarm}/acknowledge", "gone-1"),
    ):
        assert_problem(r, 503, "database_unavailable")
        assert r.headers["retry-after"] == str(RETRY_AFTER_S)


async def test_a_transaction_that_gave_up_on_a_dead_database_is_503_other_failures_500() -> None:
    from fastapi import FastAPI
    from sqlalchemy.exc import OperationalError

    from hub.alarms.errors import AlarmError
    from hub.api.problems import install_problem_handlers

    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/dead")
    def dead() -> None:
        try:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        except OperationalError as exc:
            raise AlarmError("gave up after 12 conflicting attempts") from exc

    @app.get("/bug")
    def bug() -> None:
        raise AlarmError("a real defect")

    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        assert_problem(await c.get("/dead"), 503, "database_unavailable")
        assert (await c.get("/bug")).status_code == 500
