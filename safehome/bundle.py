"""A gateway's provisioning bundle: everything the Pi needs, generated from the registry.

```
bundle-gw-000001/
  edge.toml     agent settings: gateway id, broker address(es), credentials, sensors + wiring (0600)
  ca.crt        the deployment CA the agent checks the broker against (when TLS)
  bundle.json   what it is: gateway, home, config revision, hub, sensors, when, by whom
```

The bundle is checked before anything is written or any credential changes: every model
must be one the agent knows (``devices``), and the wiring (defaults of each model plus the
overrides given) must not put two devices on one pin or ADC channel.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from devices import registry
from devices.errors import DefinitionError
from devices.wiring import Device, check_wiring
from hub.provision.errors import ProvisionError
from hub.provision.plan import GatewayPlan
from protocols.failover import NATS_FAILOVER_SPREAD_S, Address

#: Where the agent finds its files on the Pi (docs/provisioning.md, ansible role).
ETC = Path("/etc/safehome")
#: Outputs of every kit: buzzer on GPIO 18, status LED on GPIO 23 (docs/edge.md).
KIT_OUTPUTS = ({"id": "buzzer-1", "model": "buzzer"}, {"id": "led-1", "model": "status-led"})


@dataclass(frozen=True, slots=True)
class HubAddress:
    """Where the gateway connects: one broker, or every node of a clustered one (the agent
    fails over between them, docs/edge.md)."""

    servers: tuple[Address, ...]
    tls: bool = True
    #: 0 for a NATS cluster, whose QoS 1 subscriptions are replicated JetStream consumers that
    #: 10,000 gateways could not all get (docs/broker.md section 6); 1 everywhere else
    downlink_qos: int = 1
    #: NATS_FAILOVER_SPREAD_S (10 s) for a NATS cluster, whose survivors must log in a dead
    #: node's gateways through JetStream (protocols/failover.py); None: the agent's default 2 s
    failover_spread_s: float | None = None
    #: 0 for a NATS cluster, where each QoS 1 publish is a replicated JetStream write made on
    #: the gateway's read loop (docs/broker.md, "Logins after a node dies"); 1 everywhere else
    uplink_qos: int = 1
    #: False for a NATS cluster: each retained publish is a replicated JetStream write too, and
    #: the hub, reading natively, never gets a retained status replayed
    retain_status: bool = True

    @classmethod
    def for_backend(
        cls, backend: str, servers: tuple[Address, ...], tls: bool = True, downlink_qos: int | None = None
    ) -> HubAddress:
        """What a gateway must do differently on the deployment's broker (``backend`` of the
        broker settings): the one place that decides it, for the bundles and for the benches.

        On a NATS cluster every QoS 1 subscription is a replicated JetStream consumer, every
        QoS 1 or retained publish a replicated JetStream write, and every login a JetStream
        session load and store (docs/broker.md section 6, "Logins after a node dies"): the
        gateways subscribe and publish at QoS 0, retain nothing, and spread their logins on a
        dead node's survivors over NATS_FAILOVER_SPREAD_S. The hub's application ack, not the
        transport's, is what makes an event safe (docs/protocol.md), so QoS 0 loses nothing
        that is not resent. ``downlink_qos`` overrides the backend's choice."""
        if backend == "nats":
            qos = 0 if downlink_qos is None else downlink_qos
            return cls(servers, tls, qos, NATS_FAILOVER_SPREAD_S, uplink_qos=0, retain_status=False)
        return cls(servers, tls, 1 if downlink_qos is None else downlink_qos)

    def mqtt(self) -> dict[str, Any]:
        """The ``[mqtt]`` address keys: ``host``/``port`` for one broker, ``servers`` for several;
        ``downlink_qos``, ``uplink_qos`` and ``retain_status`` when they are not the agent's
        defaults (1, 1, true), ``failover_spread_s`` when set."""
        out: dict[str, Any]
        if len(self.servers) == 1:
            out = {"host": self.servers[0].host, "port": self.servers[0].port, "tls": self.tls}
        else:
            out = {"servers": [str(a) for a in self.servers], "tls": self.tls}
        if self.downlink_qos != 1:
            out["downlink_qos"] = self.downlink_qos
        if self.failover_spread_s is not None:
            out["failover_spread_s"] = self.failover_spread_s
        if self.uplink_qos != 1:
            out["uplink_qos"] = self.uplink_qos
        if not self.retain_status:
            out["retain_status"] = False
        return out


def check_plan(plan: GatewayPlan) -> None:
    """Refuse an unknown model or a wiring clash, naming the sensor (nothing written yet)."""
    for s in plan.sensors:
        try:
            defn = registry.get(s.model)
        except DefinitionError as exc:
            raise ProvisionError(
                f"sensor {s.id!r} of gateway {plan.gateway_id!r}: model {s.model!r} is not a model the "
                f"agent knows ({', '.join(registry.models())})"
            ) from exc
        if defn.is_output:
            raise ProvisionError(f"sensor {s.id!r} of gateway {plan.gateway_id!r}: {s.model!r} is an output, not a sensor")
    devices = [Device(s.id, s.model, dict(s.params)) for s in plan.sensors]
    devices += [Device(o["id"], o["model"], {}) for o in KIT_OUTPUTS]
    try:
        check_wiring(devices)
    except DefinitionError as exc:
        raise ProvisionError(
            f"gateway {plan.gateway_id!r}: {exc} (give a wiring override, e.g. --wiring SENSOR.contact_pin=24)"
        ) from exc


def edge_settings(
    plan: GatewayPlan,
    hub: HubAddress,
    password: str | None,
    *,
    ca: bool,
    pin_factory: str = "lgpio",
) -> dict[str, Any]:
    """The agent's settings file (``edge.settings.EdgeSettings``) as a TOML-ready dict."""
    mqtt: dict[str, Any] = hub.mqtt()
    if ca:
        mqtt["ca_file"] = str(ETC / "ca.crt")
    if password is not None:
        mqtt["password"] = password
    return {
        "gateway_id": plan.gateway_id,
        "pin_factory": pin_factory,
        "mqtt": mqtt,
        "sensors": [
            {"id": s.id, "model": s.model, **({"params": dict(s.params)} if s.params else {})}
            for s in plan.sensors
        ],
        "outputs": [dict(o) for o in KIT_OUTPUTS],
    }


def write_bundle(
    out: Path,
    plan: GatewayPlan,
    settings: dict[str, Any],
    *,
    hub: HubAddress,
    ca_file: Path | None,
    credential: str,
    by: str = "",
    now: dt.datetime | None = None,
) -> list[Path]:
    """Write the bundle directory (replacing an older bundle of the gateway there)."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    written = [_write(out / "edge.toml", tomli_w.dumps(settings), 0o600)]
    if ca_file is not None:
        try:
            shutil.copyfile(ca_file, out / "ca.crt")
        except OSError as exc:
            raise ProvisionError(f"cannot copy the CA certificate {ca_file}: {exc.strerror}") from exc
        os.chmod(out / "ca.crt", 0o644)
        written.append(out / "ca.crt")
    manifest = {
        "gateway_id": plan.gateway_id,
        "home_id": plan.home_id,
        "address": plan.address,
        "config_revision": plan.revision,
        "hub": hub.mqtt(),
        "credential": credential,
        "sensors": [{"id": s.id, "model": s.model, "kind": s.kind, "location": s.location} for s in plan.sensors],
        "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "created_by": by,
    }
    written.append(_write(out / "bundle.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", 0o644))
    return written


def _write(path: Path, text: str, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path
