"""``/api/v1/provision/gateways/{gateway_id}/…``: the installer's walk test and sign-off for a
phone app, the same steps as ``safehome provision walktest`` / ``signoff``.

Who: a credential with the ``provision`` scope (an installer, a supervisor) whose region
holds the gateway's home; a gateway outside the region answers 404, like an alarm.
Provisioning itself (credentials, bundle) stays on the hub machine's CLI: it writes the
broker's password file, which the API process does not own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.auth import Context, SessionDep, audit, home_scope, require
from hub.api.scopes import PROVISION
from hub.api.tokens import Principal
from hub.provision import service
from hub.provision.errors import ProvisionError
from hub.provision.models import ProvisionedGateway
from hub.registry.models import Home

router = APIRouter(prefix="/provision", tags=["provisioning"])
Installer = Annotated[Principal, Depends(require(PROVISION))]
NOT_FOUND = "no such provisioned gateway"


class WalkTestIn(BaseModel):
    timeout_s: float = Field(default=600, ge=1, le=service.TEST_MODE_MAX_S)


class SignoffIn(BaseModel):
    by: str = Field(default="", max_length=200)


def _scoped(s: Session, p: Principal, gateway_id: str) -> ProvisionedGateway:
    q = (
        select(ProvisionedGateway)
        .join(Home, Home.id == ProvisionedGateway.home_id)
        .where(ProvisionedGateway.gateway_id == gateway_id, home_scope(p))
    )
    rec = s.scalars(q).first()
    if rec is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return rec


def _state(rec: ProvisionedGateway, s: Session, now: Any) -> dict[str, Any]:
    return {
        "gateway_id": rec.gateway_id,
        "home_id": rec.home_id,
        "config_revision": rec.revision,
        "config": service.config_outcome(s, rec.gateway_id).to_json(),
        "provisioned_at": rec.provisioned_at,
        "test_mode": service.in_test_mode(s, rec.gateway_id, now),
        "test_mode_until": rec.test_mode_until,
        "walktest": rec.walktest_result,
        "signed_off_at": rec.signed_off_at,
        "signed_off_by": rec.signed_off_by,
    }


def _refused(exc: ProvisionError) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


@router.get("/gateways/{gateway_id}")
def get_install(gateway_id: str, p: Installer, ctx: Context, s: SessionDep) -> dict[str, Any]:
    """Where the install stands: config revision, test mode, last walk test, sign-off."""
    return _state(_scoped(s, p, gateway_id), s, ctx.clock.now())


@router.post("/gateways/{gateway_id}/walktest")
def start_walktest(gateway_id: str, body: WalkTestIn, p: Installer, ctx: Context, s: SessionDep) -> dict[str, Any]:
    """Test mode on (bounded), walk test started: poll GET …/walktest, then POST …/walktest/finish."""
    now = ctx.clock.now()
    with s.begin():
        _scoped(s, p, gateway_id)
        audit(s, p, "provision.walktest_start", f"gateway:{gateway_id}", {"timeout_s": body.timeout_s}, now)
        until = service.start_test_mode(s, gateway_id, now, body.timeout_s + service.SETTLE_S)
        result = service.walktest_status(s, gateway_id)
    return {"gateway_id": gateway_id, "test_mode_until": until, "expected": list(result.expected)}


@router.get("/gateways/{gateway_id}/walktest")
def walktest_progress(gateway_id: str, p: Installer, s: SessionDep) -> dict[str, Any]:
    """The walk test as it stands (reported, missing, wrong gateway); poll it for the ticks."""
    _scoped(s, p, gateway_id)
    try:
        return service.walktest_status(s, gateway_id).to_json()
    except ProvisionError as exc:
        raise _refused(exc) from exc


@router.post("/gateways/{gateway_id}/walktest/finish")
def finish_walktest(gateway_id: str, p: Installer, ctx: Context, s: SessionDep) -> dict[str, Any]:
    """Record the walk test's result (passed or the list of problems)."""
    with s.begin():
        _scoped(s, p, gateway_id)
        try:
            result = service.finish_walktest(s, gateway_id, ctx.clock.now()).to_json()
        except ProvisionError as exc:
            raise _refused(exc) from exc
        audit(s, p, "provision.walktest_finish", f"gateway:{gateway_id}", {"passed": result.get("passed")}, ctx.clock.now())
        return result


@router.post("/gateways/{gateway_id}/signoff")
def signoff(gateway_id: str, body: SignoffIn, p: Installer, ctx: Context, s: SessionDep) -> dict[str, Any]:
    """Complete the install: 409 naming what failed unless the last walk test passed."""
    now = ctx.clock.now()
    with s.begin():
        _scoped(s, p, gateway_id)
        try:
            rec = service.signoff(s, gateway_id, now, body.by or p.actor)
        except ProvisionError as exc:
            raise _refused(exc) from exc
        audit(s, p, "provision.signoff", f"gateway:{gateway_id}", {"by": rec.signed_off_by}, now)
        return _state(rec, s, now)
