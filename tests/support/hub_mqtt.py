"""Small synchronous MQTT clients for hub tests: connect with credentials, collect messages.

Everything waits by polling with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hub.broker import plugin
from hub.broker.config import render_acl, render_ratelimit, render_security
from hub.broker.credentials import Credentials, PasswordFile
from safehome.testing.mosquitto import Mosquitto
from safehome.testing.poll import wait_for


class Listener(Protocol):
    """Where a client connects: a Mosquitto, or one node of a NATS cluster."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass
class Client:
    """A paho client (MQTT 3.1.1 unless ``v5``) running its own network thread."""

    broker: Listener
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    v5: bool = False
    will: tuple[str, bytes] | None = None
    #: MQTT 3.1.1 only: False keeps the session (subscriptions, queued QoS 1) across connections
    clean_session: bool = True
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    connect_rc: list[object] = field(default_factory=list)
    disconnects: list[object] = field(default_factory=list)
    subacks: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        proto = mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311
        # paho refuses clean_session under MQTT 5 (it has clean_start at connect instead)
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=proto,
            clean_session=None if self.v5 else self.clean_session,
        )
        if self.username is not None:
            self.c.username_pw_set(self.username, self.password)
        if self.will is not None:
            self.c.will_set(self.will[0], self.will[1], qos=1, retain=True)
        self.c.on_message = lambda _c, _u, m: self.messages.put(m)
        self.c.on_connect = lambda _c, _u, _f, rc, _p: self.connect_rc.append(rc)
        self.c.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.append(rc)
        self.c.on_subscribe = self._on_subscribe
        self._lock = threading.Lock()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, rcs: list[ReasonCode], _p: Properties | None
    ) -> None:
        self.subacks[mid] = [rc.value for rc in rcs]

    def connect(self, expect_ok: bool = True, timeout: float = 10) -> Client:
        self.c.connect(self.broker.host, self.broker.port, keepalive=30)
        self.c.loop_start()
        wait_for(lambda: bool(self.connect_rc) or bool(self.disconnects), timeout, "CONNACK")
        ok = bool(self.connect_rc) and not getattr(self.connect_rc[-1], "is_failure", False)
        if expect_ok:
            assert ok, f"connect refused: {self.connect_rc} {self.disconnects}"
        elif not ok:
            self.c.loop_stop()  # do not keep retrying a refused login
        return self

    @property
    def refused(self) -> bool:
        return bool(self.connect_rc) and bool(getattr(self.connect_rc[-1], "is_failure", False))

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert mid is not None
        wait_for(lambda: mid in self.subacks, what=f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, within: float | None = 10
    ) -> bool:
        """Publish, and wait up to ``within`` s for the broker's PUBACK (QoS 1). True once the
        broker has acknowledged it; a broker may never acknowledge a publish it refuses, so
        callers that need it taken assert on the result. ``within`` None: hand it to paho and
        return False at once, connected or not (paho sends it on the reconnect), as a gateway
        whose loop never waits on a PUBACK; a test's event loop that runs the hub must not
        either (a wait also raises while paho is disconnected)."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if within is None:
            return False
        info.wait_for_publish(within)
        return info.is_published()

    def get(self, timeout: float = 10) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def drain(self) -> list[mqtt.MQTTMessage]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT, so the broker sends the Last-Will."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()


@dataclass
class SecuredBroker:
    """A real Mosquitto with the hub's generated ACL, password file and isolation plugin."""

    broker: Mosquitto
    credentials: Credentials
    hub_password: str
    directory: Path

    def gateway(self, gw: str) -> str:
        """Create credentials for ``gw`` and return its password."""
        return self.credentials.create(gw)

    def client(self, username: str | None, password: str | None, **kw: object) -> Client:
        return Client(self.broker, username, password, **kw)  # type: ignore[arg-type]

    def hub_client(self, **kw: object) -> Client:
        return self.client("hub", self.hub_password, **kw)


def isolation_plugin() -> Path:
    """The isolation plugin, built once per source version for every test broker."""
    return plugin.build(
        Path(tempfile.gettempdir()) / f"safehome-plugin-{plugin.source_digest()}" / "isolation.so"
    )


def ratelimit_plugin() -> Path:
    """The rate-limit plugin, built once per source version for every test broker."""
    src = plugin.RATELIMIT_SOURCE
    return plugin.build(
        Path(tempfile.gettempdir()) / f"safehome-plugin-{plugin.source_digest(src)}" / "ratelimit.so",
        source=src,
    )


def start_secured_broker(
    factory: Callable[..., Mosquitto], directory: Path, extra: str = "", rate: float = 0, burst: int = 200
) -> SecuredBroker:
    """``rate``: the rate-limit plugin's limit per gateway (0: loaded, limits nothing, so
    that the hub's own fairness tests see a whole flood)."""
    directory.mkdir(parents=True, exist_ok=True)
    # the layout of BrokerSettings (run/mosquitto.pid): tools given the directory find the pid
    passwd, acl, pid = directory / "passwd", directory / "acl", directory / "run" / "mosquitto.pid"
    pid.parent.mkdir(exist_ok=True)
    acl.write_text(render_acl())
    creds = Credentials(PasswordFile(passwd), None)
    hub_password = "hub-test-secret-Zq7x9Lw2kP"  # strong enough for env = "test" (hub settings)
    creds.set_hub(hub_password)
    # The fixture's `max_queued_messages 0` (unlimited) makes Mosquitto 2.0.11 disconnect a
    # client whose QoS 1 PUBLISH the ACL denies; the generated config sizes the queue, as here.
    limits = "max_queued_messages 100000\n"
    broker = factory(
        extra_config=render_security(passwd, acl, isolation_plugin())
        + render_ratelimit(ratelimit_plugin(), rate, burst)
        + f"pid_file {pid}\n"
        + limits
        + extra,
        allow_anonymous=False,
    )
    wait_for(pid.exists, what="broker pid file")
    creds.pid_path = pid
    return SecuredBroker(broker, creds, hub_password, directory)
