"""The request body limit, as the outermost middleware of the hub's HTTP app: a declared
``Content-Length`` over the limit is answered 413 at once (before routing, before the token
check, before a byte of the body is read); a body without one (chunked) is counted as it is
received and refused as soon as it passes the limit, so it is never buffered in full.

Starlette's own ``max_body_size`` does the counting too, but replaces every answer to an
oversized request with a plain-text 413 (not a problem document) and, on a route that
reads no body, only after the route (and its token check) ran.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.problems import ApiProblem, problem, problem_response

SETTING = "[hub.http] max_body_bytes"


class BodyTooLarge(ApiProblem):
    def __init__(self, limit: int, declared: int | None = None) -> None:
        size = f" (Content-Length {declared})" if declared is not None else ""
        super().__init__(
            413, "content_too_large", f"request body over the limit of {limit} bytes{size}; {SETTING}"
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            exc = BodyTooLarge(self.max_bytes, int(declared))
            p = problem(413, str(exc.detail), exc.error, instance=scope.get("path"))
            # The unread body stays on the connection: uvicorn closes it after the answer.
            await problem_response(p)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException: FastAPI re-raises it from its body reading, and the
                    # API's handler answers it as a problem.
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
