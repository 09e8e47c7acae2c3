"""The hub's HTTP app: ``/metrics`` and ``/healthz`` here; ``hub/runner.py`` (``build_hub``)
mounts the ``/api/v1`` routes on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from hub.api.body_limit import BodyLimit
from hub.metrics import HubMetrics
from hub.settings import HubSettings

#: name -> check returning (ok, detail). Checks must be cheap and must not block.
HealthChecks = dict[str, Callable[[], tuple[bool, str]]]


def create_app(
    settings: HubSettings,
    metrics: HubMetrics,
    checks: HealthChecks | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    app = FastAPI(title="safehome hub", version="1", **fastapi_kwargs)
    # Before anything reads a body, and before the token check (hub/api/body_limit.py).
    app.add_middleware(BodyLimit, max_bytes=settings.http.max_body_bytes)
    health = checks if checks is not None else {}
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.health_checks = health

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        results = {name: check() for name, check in health.items()}
        ok = all(r[0] for r in results.values())
        body = {
            "status": "ok" if ok else "failing",
            "worker": settings.worker_id,
            "checks": {name: {"ok": r[0], "detail": r[1]} for name, r in results.items()},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
