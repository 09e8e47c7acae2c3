"""The center console: the board, case and fleet pages that workstations and centers work
from, served by the hub on the API's port as static files (``/console/``).

The page is a client of the public API (``/api/v1``, the live stream): it has no routes of
its own and sees exactly what the API lets its user see. Its libraries are vendored under
``static/vendor/`` (``make console-vendor`` rebuilds them from ``web/package-lock.json``),
so nothing is fetched from the internet at run time.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
PATH = "/console"

#: The page loads only its own files and talks only to its own origin.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


class ConsoleFiles(StaticFiles):
    """Static files with the console's security headers on every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (a mount, not API routes: nothing here reads data)."""
    app.mount(PATH, ConsoleFiles(directory=STATIC, html=True), name="console")
