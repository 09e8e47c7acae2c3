"""Client certificates as identities (`use_identity_as_username`): Mosquitto skips the
password check, and so the isolation plugin's client id check. A stolen certificate must
still not take another gateway's session over: the gateway listener makes the client id
the certificate's CN, the hub's loopback listener keeps its own ids."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import protocols as p
from hub.broker.config import BrokerSettings
from hub.broker.deploy import run_argv, write_deployment
from hub.mqtt import hub_client_id
from safehome.testing.mosquitto import Mosquitto, free_port, wait_port
from safehome.testing.pki import make_pki
from safehome.testing.poll import wait_for
from tests.support.hub_mqtt import Client

THIEF, VICTIM = "id-thief", "id-victim"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[BrokerSettings, Path]]:
    pki = make_pki(tmp_path / "pki", clients=(THIEF, VICTIM), hosts=("127.0.0.1",)).directory
    s = BrokerSettings(
        directory=tmp_path / "broker", tls_bind="127.0.0.1", tls_port=free_port(), plain_port=free_port(),
        certfile=pki / "server.crt", keyfile=pki / "server.key", cafile=pki / "ca.crt",
        require_certificate=True, use_identity_as_username=True, persistence=False,
        user="root" if os.geteuid() == 0 else "mosquitto", log_dest=f"file {tmp_path / 'mosquitto.log'}",
    )  # fmt: skip
    write_deployment(s)
    proc = subprocess.Popen(run_argv(s), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", s.tls_port)
        wait_port("127.0.0.1", s.plain_port)
        yield s, pki
    finally:
        proc.terminate()
        proc.wait(10)


def _gateway(s: BrokerSettings, pki: Path, cert: str, client_id: str) -> Client:
    c = Client(Mosquitto(s.directory, port=s.tls_port), client_id=client_id)
    c.c.tls_set(ca_certs=str(pki / "ca.crt"), certfile=str(pki / f"{cert}.crt"), keyfile=str(pki / f"{cert}.key"))
    return c


def test_a_certificate_cannot_take_another_session_over(broker: tuple[BrokerSettings, Path]) -> None:
    s, pki = broker
    hub = Client(Mosquitto(s.directory, port=s.plain_port), "hub", s.hub_secret_path.read_text().strip(),
                 client_id=hub_client_id("id")).connect()
    victim = _gateway(s, pki, VICTIM, VICTIM).connect()
    thief = _gateway(s, pki, THIEF, VICTIM).connect()  # the victim's client id, its own certificate
    try:
        assert victim.subscribe(str(p.Topic.of(VICTIM, "ack"))) == [1]
        assert hub.subscribe(f"$share/hub/{p.ROOT}/gw/+/event") == [1]  # the hub's listener, its own ids
        assert thief.subscribe(f"$share/hub/{p.ROOT}/gw/+/event") == [0x80]
        # the thief is itself (client id = its CN), so the victim's session is untouched
        assert thief.subscribe(str(p.Topic.of(THIEF, "ack"))) == [1]
        hub.publish(str(p.Topic.of(VICTIM, "ack")), b"for-victim")
        assert victim.get().payload == b"for-victim"
        thief.publish(str(p.Topic.of(THIEF, "event")), b"thief-own")
        assert hub.get().payload == b"thief-own"
        wait_for(lambda: "as id-thief" in Path(s.log_dest.removeprefix("file ")).read_text(),
                 what="the thief's connection logged under its own id")
        assert victim.disconnects == []
    finally:
        for c in (thief, victim, hub):
            c.close()
