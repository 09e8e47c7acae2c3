"""Deliver a gateway's Config: retained on its ``config`` topic (protocol section 5.2), so
the gateway gets it at every (re)connect, and a changed one reaches a connected gateway at
once. Published with the hub account through the broker's loopback listener.
"""

from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub.broker.config import HUB_USER
from hub.provision.errors import ProvisionError
from protocols import Channel, Config, Topic, encode


def publish_config(config: Config, host: str, port: int, password: str, timeout_s: float = 10.0) -> None:
    """Publish ``config`` retained at QoS 1 and wait for the broker's PUBACK."""
    topic = str(Topic.of(config.gw, Channel.CONFIG))
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{HUB_USER}-provision-{uuid.uuid4().hex[:8]}"
    )
    client.username_pw_set(HUB_USER, password)
    try:
        rc = client.connect(host, port, keepalive=30)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ProvisionError(f"config of {config.gw} not published: cannot connect to {host}:{port} ({rc})")
        client.loop_start()
        info = client.publish(topic, encode(config), qos=1, retain=True)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise ProvisionError(f"config of {config.gw} not published: no PUBACK from {host}:{port} in {timeout_s} s")
    except (OSError, RuntimeError) as exc:  # refused socket; paho: publish on a dead link
        raise ProvisionError(f"config of {config.gw} not published: {host}:{port}: {exc}") from exc
    finally:
        client.disconnect()
        client.loop_stop()
