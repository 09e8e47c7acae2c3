"""Mount the API on a FastAPI app: ``mount_api(app, ctx)`` (used by ``hub.app.create_app``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from hub.api import alarms, kpis, stream
from hub.api.auth import principal
from hub.api.context import ApiContext

PREFIX = "/api/v1"


def api_router() -> APIRouter:
    """Every route below requires a valid token (the router-level dependency), and every
    route that reads alarms filters them with :func:`hub.api.auth.alarm_scope`."""
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(principal)])
    router.include_router(stream.router)  # before /alarms/{alarm_id}
    router.include_router(alarms.router)
    router.include_router(kpis.router)
    return router


def mount_api(app: FastAPI, ctx: ApiContext) -> None:
    app.state.alarm_api = ctx
    app.include_router(api_router())


def make_api_app(ctx: ApiContext) -> FastAPI:
    """A stand-alone app with only the alarm API (tests, or a hub without the rest)."""
    app = FastAPI(title="safehome hub API", version="1")
    mount_api(app, ctx)
    return app
