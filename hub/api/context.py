"""What the API routes need from the running hub, handed over explicitly (no globals)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from hub.alarms.clock import Clock, SystemClock
from hub.notify.console import ConsoleBus
from hub.notify.targets import TargetPolicy
from hub.sealing import SecretBox
from hub.timeseries.base import TimeSeriesStore
from protocols import Command


class CommandSender(Protocol):
    """Publishes a command on its gateway's ``cmd`` topic (QoS 1); raises
    :class:`hub.api.errors.CommandNotSent` when the broker did not take it."""

    async def send(self, command: Command) -> None: ...


class Outbox(Protocol):
    """This worker's notification dispatcher as a route sees it
    (:class:`hub.notify.dispatch.Dispatcher`)."""

    def wake(self) -> None:
        """Thread-safe: notifications were committed; the outbox workers look now."""


@dataclass
class ApiContext:
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    #: Woken after a route committed notifications (an operator's step, a webhook ping or
    #: replay); None: this worker delivers nothing (the workers that do poll the table).
    outbox: Outbox | None = None
    #: The worker's console push bus (``/api/v1/alarms/stream``); None: no stream.
    bus: ConsoleBus | None = None
    #: An open event stream re-reads its token this often and closes once it is revoked
    #: (an expiry is seen at once, from the token itself).
    token_recheck_s: float = 5.0
    #: Console users: an access token lives this long; a refresh token (a shift) this long
    #: (``[hub.auth]`` access_ttl_s, refresh_ttl_s).
    access_ttl: dt.timedelta = dt.timedelta(minutes=15)
    refresh_ttl: dt.timedelta = dt.timedelta(hours=12)
    #: When this worker last deleted expired login counts (``hub/api/users.py``, at most
    #: every ``throttle.PRUNE_EVERY``); state, not a setting.
    throttle_pruned_at: dt.datetime | None = field(default=None, repr=False)
    #: argon2id; default argon2-cffi's (RFC 9106 low-memory) parameters (``[hub.auth]`` argon2_*)
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    #: Seals webhook secrets made through the API (``[hub.secrets]``); None: such routes
    #: answer 503 instead of sealing with a key the hub's workers cannot open.
    secret_box: SecretBox | None = None
    #: Where webhooks made through the API may post (``[hub.alarms.webhooks]``; default:
    #: public addresses only). Every delivery is checked again by the webhook channel.
    webhook_targets: TargetPolicy = field(default_factory=TargetPolicy)
    #: Where readings are read from (``/api/v1/.../readings``); None: not on this worker.
    timeseries: TimeSeriesStore | None = None
    #: How gateway commands go out (``/api/v1/gateways/{id}/commands``); None: not here.
    commands: CommandSender | None = None

    def notifications_committed(self) -> None:
        """A route committed notifications: this worker's outbox sends them now, not at its
        next idle poll."""
        if self.outbox is not None:
            self.outbox.wake()
