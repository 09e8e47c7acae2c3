"""Client-id takeover watch for the NATS backend.

nats-server 2.9 cannot bind an MQTT client id to a username: a gateway connecting with
another gateway's client id (or a hub connection's) takes that session over and disconnects
its owner (measured: tests/hub/broker/test_nats_takeover.py). Mosquitto refuses such a
CONNECT in the isolation plugin; on NATS this watch finds it afterwards: every ``interval``
it reads each local node's ``/connz?auth=true`` (monitoring port, loopback), where every
MQTT connection shows ``authorized_user`` and ``mqtt_client``. A gateway user whose client
id is not its own gateway id is an impostor: its credentials are revoked (the reload drops
its connections on every local node, and it cannot log in again) and it is logged at
ERROR. The owner's gateway reconnects by itself. The hub's own user is never revoked: a
hub connection with an id outside ``hub-`` is only logged.

:func:`impostors` is pure (connz JSON in, findings out); :class:`TakeoverWatch` does the I/O.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.broker.config import HUB_USER, BrokerSettings
from hub.broker.errors import BrokerError, CredentialError
from hub.broker.nats import NatsCredentials
from hub.broker.plugin import HUB_CLIENT_PREFIX

log = logging.getLogger(__name__)

#: Connections per /connz page: ~400 bytes of JSON each, so a page is ~400 KB.
PAGE = 1024


@dataclass(frozen=True)
class Impostor:
    node: str
    user: str
    client_id: str
    cid: int

    @property
    def revocable(self) -> bool:
        """Gateways are revoked; the hub's account is only reported (revoking it would stop
        every alarm of the district)."""
        return self.user != HUB_USER


def impostors(node: str, connz: dict[str, Any]) -> list[Impostor]:
    """MQTT connections of ``connz`` whose client id is not their user's."""
    found = []
    for conn in connz.get("connections") or []:
        client_id = conn.get("mqtt_client")
        if not client_id:
            continue  # a native NATS connection (the hub's workers): no MQTT client id
        user = conn.get("authorized_user") or ""
        own = client_id.startswith(HUB_CLIENT_PREFIX) if user == HUB_USER else client_id == user
        if not own:
            found.append(Impostor(node, user, client_id, int(conn.get("cid", 0))))
    return found


def fetch_connz(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """Every open connection of one node, page by page."""
    merged: list[dict[str, Any]] = []
    offset = 0
    while True:
        page_url = f"{url}/connz?auth=true&subs=0&state=open&limit={PAGE}&offset={offset}"
        try:
            with urllib.request.urlopen(page_url, timeout=timeout) as r:
                page = json.loads(r.read())
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise BrokerError(f"cannot read {page_url}: {exc}") from exc
        conns = page.get("connections") or []
        merged += conns
        offset += len(conns)
        if not conns or offset >= int(page.get("total", 0)):
            return {"connections": merged}


class TakeoverWatch:
    """Poll the local nodes' ``/connz`` and revoke impostors. ``fetch`` is replaceable for tests
    of the loop; the tests use the real one against a real cluster."""

    def __init__(
        self, settings: BrokerSettings, fetch: Callable[[str], dict[str, Any]] = fetch_connz
    ) -> None:
        self.settings = settings
        self.credentials = NatsCredentials(settings)
        self.fetch = fetch
        self.revoked: list[Impostor] = []

    def scan(self) -> list[Impostor]:
        """One round over every node; returns what it found (and revoked)."""
        found: list[Impostor] = []
        for node in self.settings.nodes:
            try:
                connz = self.fetch(f"http://127.0.0.1:{node.http_port}")
            except BrokerError as exc:
                log.warning("takeover watch: node %s not readable: %s", node.name, exc)
                continue
            found += impostors(node.name, connz)
        for imp in found:
            self._act(imp)
        return found

    def _act(self, imp: Impostor) -> None:
        if not imp.revocable:
            log.error(
                "takeover watch: node %s: the hub's account connected with client id %r (cid %d), "
                "outside %r: not revoked, check the hub's connections",
                imp.node,
                imp.client_id,
                imp.cid,
                HUB_CLIENT_PREFIX,
            )
            return
        try:
            self.credentials.revoke(imp.user)
        except CredentialError:
            return  # revoked already (an earlier round or another node's finding)
        self.revoked.append(imp)
        log.error(
            "takeover watch: node %s: user %r connected as client id %r (cid %d), another gateway's "
            "session: credentials of %r REVOKED (its connections are dropped); re-provision that gateway "
            "with `safehome broker gateway add` once it is back in its owner's hands",
            imp.node,
            imp.user,
            imp.client_id,
            imp.cid,
            imp.user,
        )
        left = self.credentials.not_reloaded()
        if left:  # the revocation is not in force there yet: say so as loudly
            log.error("takeover watch: the revocation of %r is %s", imp.user, left)

    def run(self, interval: float = 1.0, rounds: int | None = None) -> None:
        n = 0
        while rounds is None or n < rounds:
            self.scan()
            n += 1
            time.sleep(interval)
