"""``/api/v1/webhooks``: webhook subscriptions (create with a secret shown once, list, get,
update, disable, rotate the secret), a test delivery (``ping``), the delivery log with
every attempt, and the replay of a dead delivery.

Region-scoped like alarms: a caller sees the subscriptions of its region and of the
regions inside it; any other answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alarms.store.models import WebhookSubscription
from hub.api import webhooks_store as store
from hub.api.auth import Context, SessionDep, audit, require
from hub.api.context import ApiContext
from hub.api.problems import MEDIA_TYPE, ApiProblem, Problem, invalid_field
from hub.api.scopes import WEBHOOKS_MANAGE
from hub.api.tokens import Principal, parse_region
from hub.api.webhooks_schemas import (
    AttemptPublic,
    DeliveriesPage,
    DeliveryDetail,
    DeliveryPublic,
    DeliveryQueued,
    DeliveryStatus,
    SecretRotate,
    SecretShown,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhooksList,
    WebhookUpdate,
)
from hub.db.engine import read_only
from hub.db.tx import in_transaction
from hub.notify.models import Notification
from hub.notify.targets import TargetRefused
from hub.sealing import SecretBox
from hub.settings import secret_weakness
from hub.webhooks_cli import MIN_SECRET_LENGTH

router = APIRouter(tags=["webhooks"])
NOT_FOUND = "no such webhook"
NO_DELIVERY = "no such delivery"
MAX_PAGE = 200
#: Every route needs ``webhooks:manage`` (reading a delivery log included: it shows where
#: alarms go and what they carried).
#: A subscription id (a 64-bit integer column: a larger one is a 422, not a database error).
WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Manager = Annotated[Principal, Depends(require(WEBHOOKS_MANAGE))]


def _doc(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": description}


ERRORS = {
    403: _doc("the credential lacks the scope `webhooks:manage`"),
    404: _doc("no such webhook (or delivery) in the caller's region"),
    409: _doc(
        "`url_taken`: another active webhook posts to this URL; `not_dead`: only a dead delivery is replayed"
    ),
    503: _doc("`secrets_unavailable`: no secrets key configured on this hub"),
}


def _r(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: ERRORS[c] for c in codes}


def _box(ctx: ApiContext) -> SecretBox:
    if ctx.secret_box is None:  # a hub without [hub.secrets] cannot seal: say so, never 500
        raise ApiProblem(503, "secrets_unavailable", "no secrets key configured on this hub ([hub.secrets])")
    return ctx.secret_box


def _public(w: WebhookSubscription) -> WebhookPublic:
    return WebhookPublic(
        id=w.id,
        url=w.url,
        region=f"{w.region_kind}:{w.region_id}",
        name=w.name,
        format=w.format,
        active=w.active,
    )


def _secret(given: str | None) -> str:
    if given is None:
        return secrets.token_urlsafe(32)
    weak = secret_weakness(given, MIN_SECRET_LENGTH)
    if weak is not None:
        raise invalid_field(
            ("body", "secret"), f"is {weak}; leave it out to have one generated", "weak_secret"
        )
    return given


def _found(s: Session, p: Principal, webhook_id: WebhookId) -> WebhookSubscription:
    w = store.scoped_webhook(s, p, webhook_id)
    if w is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return w


def _allowed_target(ctx: ApiContext, url: str, field: str = "url") -> None:
    """422 naming ``body.<field>`` and the rule when the URL's host is (or resolves to) an
    address webhooks may not post to (``[hub.alarms.webhooks]``, hub/notify/targets.py)."""
    try:
        ctx.webhook_targets.check_url(url)
    except TargetRefused as exc:
        said = str(exc) if field == "url" else f"the webhook's URL: {exc}"
        raise invalid_field(("body", field), said, "forbidden_target") from None


def _url_taken(url: str) -> ApiProblem:
    return ApiProblem(409, "url_taken", f"another active webhook already posts to {url}")


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    operation_id="create_webhook",
    responses=_r(403, 409, 503),
)
def create_webhook(body: WebhookCreate, p: Manager, ctx: Context, response: Response) -> WebhookCreated:
    """Subscribe ``url`` to every alarm of ``region``. The answer carries the signing secret:
    it is shown this once."""
    kind, rid = parse_region(body.region) if body.region else (p.region_kind, p.region_id)
    _allowed_target(ctx, body.url)
    secret = _secret(body.secret)
    sealed = _box(ctx).seal(secret)

    def work(s: Session) -> WebhookSubscription:
        if not store.region_is_within(s, p, kind, rid):
            raise invalid_field(("body", "region"), "no such region within the caller's region")
        if store.url_in_use(s, body.url):
            raise _url_taken(body.url)
        w = WebhookSubscription(
            url=body.url,
            secret_sealed=sealed,
            region_kind=kind,
            region_id=rid,
            name=body.name,
            format=body.format,
        )
        s.add(w)
        s.flush()
        audit(
            s,
            p,
            "webhook.create",
            f"webhook:{w.id}",
            {"url": w.url, "region": f"{kind}:{rid}"},
            ctx.clock.now(),
        )
        return w

    w = in_transaction(ctx.sessions, work)
    response.headers["Location"] = f"/api/v1/webhooks/{w.id}"
    return WebhookCreated(**_public(w).model_dump(), secret=secret)


@router.get("/webhooks", response_model=WebhooksList, operation_id="list_webhooks", responses=_r(403))
def list_webhooks(p: Manager, s: SessionDep) -> WebhooksList:
    """The subscriptions of the caller's region and of the regions inside it, active or not."""
    rows = read_only(s).scalars(
        select(WebhookSubscription).where(store.webhook_scope(p)).order_by(WebhookSubscription.id)
    )
    return WebhooksList(items=[_public(w) for w in rows])


@router.get("/webhooks/{webhook_id}", response_model=WebhookPublic, operation_id="get_webhook",
            responses=_r(403, 404))  # fmt: skip
def get_webhook(webhook_id: WebhookId, p: Manager, s: SessionDep) -> WebhookPublic:
    return _public(_found(read_only(s), p, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookPublic, operation_id="update_webhook",
              responses=_r(403, 404, 409))  # fmt: skip
def update_webhook(webhook_id: WebhookId, body: WebhookUpdate, p: Manager, ctx: Context) -> WebhookPublic:
    """Rename, change the format, disable (``active: false``) or enable again (its URL is
    checked again: a 422 naming ``body.url`` if it may no longer be posted to)."""

    def work(s: Session) -> WebhookPublic:
        w = _found(s, p, webhook_id)
        if body.active and not w.active:
            _allowed_target(ctx, w.url, "active")
            if store.url_in_use(s, w.url, but=w.id):
                raise _url_taken(w.url)
        changed = body.model_dump(exclude_none=True)
        for name, value in changed.items():
            setattr(w, name, value)
        audit(s, p, "webhook.update", f"webhook:{w.id}", changed, ctx.clock.now())
        return _public(w)

    return in_transaction(ctx.sessions, work)


@router.delete("/webhooks/{webhook_id}", status_code=204, operation_id="disable_webhook",
               responses=_r(403, 404))  # fmt: skip
def disable_webhook(webhook_id: WebhookId, p: Manager, ctx: Context) -> Response:
    """Stop deliveries to it. The subscription and its delivery log stay (``active: false``)."""

    def work(s: Session) -> None:
        _found(s, p, webhook_id).active = False
        audit(s, p, "webhook.disable", f"webhook:{webhook_id}", at=ctx.clock.now())

    in_transaction(ctx.sessions, work)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=SecretShown, operation_id="rotate_webhook_secret",
             responses=_r(403, 404, 503))  # fmt: skip
def rotate_secret(webhook_id: WebhookId, body: SecretRotate, p: Manager, ctx: Context) -> SecretShown:
    """Replace the signing secret; the new one is shown this once and signs every delivery
    that starts after this answer, on every hub worker (each delivery reads the current
    secret). One already on the wire carries the old: accept both for a minute."""
    secret = _secret(body.secret)
    sealed = _box(ctx).seal(secret)

    def work(s: Session) -> None:
        _found(s, p, webhook_id).secret_sealed = sealed
        audit(s, p, "webhook.rotate_secret", f"webhook:{webhook_id}", at=ctx.clock.now())  # never the secret

    in_transaction(ctx.sessions, work)
    return SecretShown(id=webhook_id, secret=secret)


@router.post("/webhooks/{webhook_id}/ping", status_code=202, response_model=DeliveryQueued,
             operation_id="ping_webhook", responses=_r(403, 404))  # fmt: skip
def ping_webhook(webhook_id: WebhookId, p: Manager, ctx: Context) -> DeliveryQueued:
    """Queue a signed test delivery (``X-Safehome-Event: ping``), retried like any other;
    follow it in the delivery log."""

    def work(s: Session) -> str:
        nid = store.ping(s, _found(s, p, webhook_id), p.actor, ctx.clock.now())
        audit(s, p, "webhook.ping", f"webhook:{webhook_id}", {"delivery": nid}, ctx.clock.now())
        return nid

    nid = in_transaction(ctx.sessions, work)
    ctx.notifications_committed()
    return DeliveryQueued(delivery_id=nid, status="pending")


def _delivery(n: Notification) -> DeliveryPublic:
    seq = n.payload.get("seq")
    return DeliveryPublic(
        id=n.id,
        event=str(n.payload.get("event", "alarm")),
        alarm_id=n.alarm_id,
        seq=seq if isinstance(seq, int) else None,
        status=n.status,
        attempts=n.attempts,
        created_at=n.created_at,
        next_attempt_at=n.next_attempt_at if n.status == "pending" else None,
        delivered_at=n.delivered_at,
        last_error=n.last_error,
    )


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveriesPage, operation_id="list_webhook_deliveries",
            responses=_r(403, 404))  # fmt: skip
def list_deliveries(
    webhook_id: WebhookId,
    p: Manager,
    s: SessionDep,
    status_: Annotated[list[DeliveryStatus] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
) -> DeliveriesPage:
    """Newest first; ``status=dead`` lists what may be replayed."""
    q = store.deliveries_of(p, _found(read_only(s), p, webhook_id))
    if status_:
        q = q.where(Notification.status.in_(status_))
    if cursor:
        q = q.where(Notification.id < cursor)
    rows = s.scalars(q.limit(limit + 1)).all()
    items = [_delivery(n) for n in rows[:limit]]
    return DeliveriesPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


def _scoped_delivery(s: Session, p: Principal, webhook_id: WebhookId, delivery_id: str) -> Notification:
    n = s.scalars(
        store.deliveries_of(p, _found(s, p, webhook_id)).where(Notification.id == delivery_id)
    ).first()
    if n is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_DELIVERY)
    return n


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryDetail,
            operation_id="get_webhook_delivery", responses=_r(403, 404))  # fmt: skip
def get_delivery(webhook_id: WebhookId, delivery_id: str, p: Manager, s: SessionDep) -> DeliveryDetail:
    """One delivery with every attempt (when, the receiver's status, the error)."""
    n = _scoped_delivery(read_only(s), p, webhook_id, delivery_id)
    log = [AttemptPublic.model_validate(a) for a in store.attempts_of(s, n.id)]
    return DeliveryDetail(**_delivery(n).model_dump(), attempt_log=log, payload=n.payload)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", status_code=202, response_model=DeliveryQueued,
             operation_id="replay_webhook_delivery", responses=_r(403, 404, 409))  # fmt: skip
def replay_delivery(webhook_id: WebhookId, delivery_id: str, p: Manager, ctx: Context) -> DeliveryQueued:
    """Send a dead delivery once more, now, under the same delivery id (a receiver that did
    get it deduplicates). If that attempt fails too, it is dead again."""

    def work(s: Session) -> bool:
        n = _scoped_delivery(s, p, webhook_id, delivery_id)
        if not store.replay(s, n.id, ctx.clock.now()):
            return False
        audit(s, p, "webhook.replay", f"webhook:{webhook_id}", {"delivery": n.id}, ctx.clock.now())
        return True

    if not in_transaction(ctx.sessions, work):
        raise ApiProblem(409, "not_dead", "only a dead delivery is replayed; this one is not dead")
    ctx.notifications_committed()
    return DeliveryQueued(delivery_id=delivery_id, status="pending")
