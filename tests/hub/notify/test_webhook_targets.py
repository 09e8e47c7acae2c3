"""Where a webhook may post (hub/notify/targets.py): the rules, and the check made before
every delivery by the hub's own webhook channel, on the addresses the host resolves to
then, with a real outbox, database and HTTP receiver."""

from __future__ import annotations

import ipaddress

import pytest

from hub.alarms.service import AlarmService
from hub.alarms.settings import AlarmSettings, WebhookSettings
from hub.alarms.store.models import WebhookSubscription
from hub.notify.outbox import OutboxWorker
from hub.notify.targets import TargetPolicy, TargetRefused, is_this_host
from hub.sealing import dev_box
from tests.hub.conftest import Hub, alarm_settings
from tests.hub.notify.conftest import add, row
from tests.support.http import http_receiver

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped: judged as the IPv4 address inside
    "2002:7f00:1::1": "loopback",  # 6to4 of 127.0.0.1
    "169.254.169.254": "link_local",  # cloud metadata
    "64:ff9b::a9fe:a9fe": "link_local",  # NAT64 of 169.254.169.254
    "fe80::1": "link_local",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "private",
    "fd00:ec2::254": "private",
    "0.0.0.0": "not_global",
    "::": "not_global",
    "224.0.0.1": "not_global",
    "255.255.255.255": "not_global",
    "198.51.100.7": "not_global",
}


@pytest.mark.parametrize(("address", "rule"), sorted(REFUSED.items()))
def test_internal_addresses_are_refused_by_default(address: str, rule: str) -> None:
    assert TargetPolicy().rule_for(ipaddress.ip_address(address)) == rule


def test_public_addresses_pass_and_the_operator_allows_networks_explicitly() -> None:
    default = TargetPolicy()
    for public in ("8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"):
        assert default.rule_for(ipaddress.ip_address(public)) is None
    lan = WebhookSettings(allow_networks=["10.1.0.0/16"]).policy()
    assert lan.rule_for(ipaddress.ip_address("10.1.7.7")) is None
    assert lan.rule_for(ipaddress.ip_address("10.2.7.7")) == "private"  # only the listed network
    assert lan.rule_for(ipaddress.ip_address("127.0.0.1")) == "loopback"
    private = WebhookSettings(allow_private=True).policy()
    assert private.rule_for(ipaddress.ip_address("192.168.1.1")) is None
    # allow_private never opens loopback or the metadata service
    assert private.rule_for(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert private.rule_for(ipaddress.ip_address("169.254.169.254")) == "link_local"
    with pytest.raises(ValueError, match=r"allow_networks\[1\]"):
        WebhookSettings(allow_networks=["10.0.0.0/8", "intranet"])


def test_the_hubs_own_addresses_are_refused_even_on_an_allowed_private_network() -> None:
    mine = [
        ip
        for ip in (ipaddress.ip_address(a) for a in _own_addresses())
        if not ip.is_loopback and not ip.is_link_local and TargetPolicy(allow_private=True).rule_for(ip) != "not_global"
    ]
    if not mine:
        pytest.skip("this machine has no address outside loopback, link-local and reserved space")
    assert is_this_host(mine[0])
    assert TargetPolicy(allow_private=True).rule_for(mine[0]) == "this_host"


def _own_addresses() -> list[str]:
    """This machine's source addresses towards a public and a private destination (a UDP
    connect sends nothing)."""
    import socket

    out = []
    for family, dest in ((socket.AF_INET, "8.8.8.8"), (socket.AF_INET6, "2001:4860::1"), (socket.AF_INET6, "fd00::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((dest, 9))
                out.append(str(sock.getsockname()[0]).split("%")[0])
        except OSError:
            continue
    return out


def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(TargetRefused, match=r"localhost resolves to 127\.0\.0\.1: .*rule loopback") as err:
        TargetPolicy().check_url("http://localhost:8080/hook")
    assert err.value.rule == "loopback"
    with pytest.raises(TargetRefused, match="rule loopback"):  # 127.0.0.1 spelt as a number
        TargetPolicy().check_url("http://2130706433/hook")
    with pytest.raises(TargetRefused, match="rule link_local"):
        TargetPolicy().check_url("http://169.254.169.254/latest/meta-data/")
    TargetPolicy().check_url("https://nowhere.invalid/hook")  # does not resolve (yet): checked at delivery


def _webhook_worker(svc: AlarmService) -> OutboxWorker:
    (worker,) = [w for w in svc.outboxes if w.channel.name == "webhook"]
    return worker


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_delivery_to_a_refused_address_is_dead_at_once_counted_and_logged(hub: Hub, host: str) -> None:
    """The subscription may have been accepted when its name pointed elsewhere (DNS
    rebinding), or before the operator narrowed the rule: the hub's channel checks again
    before posting, and nothing reaches the receiver."""
    with http_receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", host) + "/hook"
        with hub.sessions() as s, s.begin():
            s.add(WebhookSubscription(url=url, secret_sealed=dev_box().seal("k" * 40), region_kind="district",
                                      region_id="pudong"))  # fmt: skip
        svc = AlarmService(AlarmSettings(retry_max_attempts=8), hub.sessions, "w")  # the default rules
        try:
            nid = add(hub, "webhook", url)
            assert await _webhook_worker(svc).run_once() == 1
            n, attempts = row(hub, nid)
            assert (n.status, n.attempts) == ("dead", 1)  # permanent: not retried 8 times
            assert "rule loopback" in (n.last_error or "") and "refused" in (n.last_error or "")
            assert [(a.ok, a.status_code) for a in attempts] == [(False, None)]
            assert "rule loopback" in attempts[0].detail
            assert svc.metrics.webhook_refused.labels("loopback")._value.get() == 1
            assert svc.metrics.deliveries.labels("webhook", "dead")._value.get() == 1
            assert receiver.requests == []
        finally:
            await svc.http.aclose()


async def test_an_allowed_name_is_posted_to_the_address_that_was_checked(hub: Hub) -> None:
    """With loopback allowed, a URL by name reaches the receiver with its own Host header."""
    with http_receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost") + "/hook"
        with hub.sessions() as s, s.begin():
            s.add(WebhookSubscription(url=url, secret_sealed=dev_box().seal("k" * 40), region_kind="district",
                                      region_id="pudong"))  # fmt: skip
        svc = AlarmService(alarm_settings(), hub.sessions, "w")
        try:
            nid = add(hub, "webhook", url)
            await _webhook_worker(svc).run_once()
            assert row(hub, nid)[0].status == "delivered"
            (req,) = receiver.wait_for(1)
            assert req.headers["host"] == url.split("/")[2] and req.path == "/hook"
        finally:
            await svc.http.aclose()


async def test_a_delivery_goes_on_to_the_next_address_when_one_takes_no_connection(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name with several addresses (dual stack with its IPv6 down, several servers): the
    first refuses the connection, the next one gets the post. With every address refusing,
    the delivery fails retryably and names each; a receiver's own answer (a 500 at the first
    address) is not tried elsewhere."""
    import hub.notify.targets as targets

    with http_receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        url = f"http://alarms.receiver.test:{port}/hook"
        resolved = [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")]
        monkeypatch.setattr(targets, "resolve", lambda host, _port: list(resolved))
        with hub.sessions() as s, s.begin():
            s.add(WebhookSubscription(url=url, secret_sealed=dev_box().seal("k" * 40), region_kind="district",
                                      region_id="pudong"))  # fmt: skip
        svc = AlarmService(alarm_settings(retry_max_attempts=8), hub.sessions, "w")
        try:
            nid = add(hub, "webhook", url)
            await _webhook_worker(svc).run_once()
            assert row(hub, nid)[0].status == "delivered"
            (req,) = receiver.wait_for(1)
            assert req.headers["host"] == f"alarms.receiver.test:{port}"

            resolved[:] = [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.3")]
            nid = add(hub, "webhook", url)
            await _webhook_worker(svc).run_once()
            n, attempts = row(hub, nid)
            assert n.status != "delivered" and n.status != "dead"  # retried later
            assert "127.0.0.3" in attempts[-1].detail and "127.0.0.2" in attempts[-1].detail

            resolved[:] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.0.2")]
            receiver.script.append(500)
            nid = add(hub, "webhook", url)
            await _webhook_worker(svc).run_once()
            n, attempts = row(hub, nid)
            assert [a.status_code for a in attempts] == [500]
            assert "127.0.0.2" not in attempts[-1].detail
        finally:
            await svc.http.aclose()
