"""Mount the API on a FastAPI app: ``mount_api(app, ctx)`` (used by ``hub.app.create_app``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from hub.api import (
    alarms,
    audit_api,
    cap,
    centers,
    commands,
    gateways,
    homes,
    incidents,
    keys,
    kpis,
    provisioning,
    readings,
    stream,
    users_api,
    webhooks,
)
from hub.api.auth import Require, principal
from hub.api.body_limit import BodyLimit
from hub.api.context import ApiContext
from hub.api.problems import RESPONSES, error_doc, install_problem_handlers
from hub.api.text import plain_text
from hub.console import mount_console

PREFIX = "/api/v1"
#: Default request body limit: a lifecycle body is a note (<= 2,000 characters) and a few
#: fields; 64 KiB leaves room and refuses a flood before it is read (``[hub.http]``).
MAX_BODY_BYTES = 64 * 1024


def api_router() -> APIRouter:
    """Every route below refuses control characters in any text and, except login and
    refresh (:func:`hub.api.auth.public`), requires a valid credential holding the route's
    scope (:func:`hub.api.auth.require`); every route that reads alarms filters them with
    :func:`hub.api.auth.alarm_scope`, homes with :func:`hub.api.auth.home_scope`."""
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(plain_text)], responses=RESPONSES)
    router.include_router(documented(users_api.public_router))  # login, refresh: no credential yet
    # a valid credential for everything else, even a route that forgot its require(scope)
    # (tests/hub/api/test_route_scopes.py fails on such a route)
    router.include_router(protected_router())
    return router


def protected_router() -> APIRouter:
    router = APIRouter(
        dependencies=[Depends(principal)], responses={403: error_doc("the credential lacks the route's scope")}
    )
    router.include_router(documented(users_api.router))
    router.include_router(documented(keys.router))
    router.include_router(documented(audit_api.router))
    router.include_router(documented(stream.router))  # before /alarms/{alarm_id}
    router.include_router(documented(alarms.router))
    router.include_router(documented(cap.router))
    router.include_router(documented(kpis.router))
    router.include_router(documented(provisioning.router))
    router.include_router(documented(incidents.router))
    router.include_router(documented(webhooks.router))
    for resources in (homes, gateways, commands, readings, centers):
        router.include_router(documented(resources.router))
    return router


def _needs_scope(d: Dependant) -> bool:
    return any(
        (isinstance(sub.call, Require) and sub.call.scope is not None) or _needs_scope(sub)
        for sub in d.dependencies
    )


def documented(router: APIRouter) -> APIRouter:
    """``router`` with the errors every route of a kind can answer added to its OpenAPI
    responses, so that each operation lists every status it may give (checked by
    tests/hub/api/test_schemathesis.py): 403 where a scope is required, 400 where a body is
    read, 404 where the path names an object. Call it before including the router (an
    included router's routes are no longer plain routes)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        if _needs_scope(route.dependant):
            route.responses.setdefault(403, error_doc("the credential lacks the scope this operation needs"))
        if route.body_field is not None:
            route.responses.setdefault(400, error_doc("a request body that cannot be read as JSON text"))
        if "{" in route.path:
            route.responses.setdefault(404, error_doc("no such object in the caller's region"))
    return router


def mount_api(app: FastAPI, ctx: ApiContext) -> None:
    app.state.alarm_api = ctx
    install_problem_handlers(app)
    app.include_router(api_router())
    mount_console(app)  # the console's static page, a client of the routes above


def make_api_app(ctx: ApiContext) -> FastAPI:
    """A stand-alone app with only the alarm API (tests, or a hub without the rest)."""
    app = FastAPI(title="safehome hub API", version="1")
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    mount_api(app, ctx)
    return app
