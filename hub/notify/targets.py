"""Where a webhook may post: a guard against server-side request forgery.

Anyone holding ``webhooks:manage`` (an API key of a third party) chooses the URL the hub
POSTs to. Without a guard that reaches what only the hub's machine can reach: its own
broker and database, the cloud metadata service (169.254.169.254), the office LAN. So a
webhook's host must resolve to public addresses only, unless the operator lists its
network in ``[hub.alarms.webhooks] allow_networks`` (or allows every private network with
``allow_private``). The rule is applied twice:

- when a subscription is made or enabled again through the API (a 422 naming ``body.url``
  and the rule), on the addresses its host resolves to then;
- before every delivery, on the addresses the host resolves to *now* (a name may be
  pointed elsewhere after it was accepted: DNS rebinding). The POST then goes to the
  address that was checked (the URL's host is kept in ``Host`` and the TLS server name),
  so a second lookup by the HTTP client cannot land somewhere else. A refused delivery is
  dead at once (``last_error`` names the rule).

The rules, checked in this order (the first that matches names the refusal); an address in
an ``allow_networks`` entry passes them all:

=============  ==================================================================
``loopback``   127.0.0.0/8, ::1
``link_local`` 169.254.0.0/16 (cloud metadata), fe80::/10
``not_global`` unspecified, multicast, broadcast, reserved, documentation, benchmarking
``private``    10/8, 172.16/12, 192.168/16, 100.64/10 (shared), fc00::/7 (passes with
               ``allow_private``)
``this_host``  an address of the hub's own machine (whatever it listens on there)
=============  ==================================================================

IPv4 addresses written as IPv6 (``::ffff:127.0.0.1``, 6to4, NAT64 ``64:ff9b::/96``) are
judged as the IPv4 address inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Networks allowed by ``allow_private`` (RFC 1918, RFC 6598 shared space, IPv6 ULA).
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

#: What each rule means, for the refusal's text.
RULES = {
    "loopback": "a loopback address",
    "link_local": "a link-local address (cloud metadata lives there)",
    "not_global": "not a public address (unspecified, multicast, reserved or documentation)",
    "private": "a private network address",
    "this_host": "an address of the hub's own machine",
    "unresolvable": "a host that does not resolve",
}


class TargetRefused(Exception):
    """The URL's host is (or resolves to) an address the guard refuses."""

    def __init__(self, rule: str, host: str, address: str | None) -> None:
        self.rule, self.host, self.address = rule, host, address
        where = host if address is None or address == host else f"{host} resolves to {address}"
        super().__init__(
            f"{where}: {RULES[rule]} (rule {rule}); webhooks post to public addresses only, unless "
            "[hub.alarms.webhooks] allow_networks lists the network"
        )


def _inner(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_this_host(ip: IPAddress) -> bool:
    """True when ``ip`` is assigned to this machine (a socket can bind to it)."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((str(ip), 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class TargetPolicy:
    """The operator's rule for webhook targets (``[hub.alarms.webhooks]``)."""

    allow_private: bool = False
    allow_networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def of(cls, allow_private: bool = False, allow_networks: Iterable[str] = ()) -> TargetPolicy:
        return cls(allow_private, tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks))

    def rule_for(self, address: IPAddress) -> str | None:
        """The rule that refuses ``address``, or None when it may be posted to."""
        ip = _inner(address)
        if any(ip in n or address in n for n in self.allow_networks):
            return None
        if ip.is_loopback:
            return "loopback"
        if ip.is_link_local:
            return "link_local"
        if any(ip in n for n in PRIVATE_NETWORKS if n.version == ip.version):
            if not self.allow_private:
                return "private"
        elif not ip.is_global or ip.is_multicast:
            return "not_global"
        if is_this_host(ip):
            return "this_host"
        return None

    def check(self, host: str, addresses: Sequence[IPAddress]) -> None:
        """Raise :class:`TargetRefused` unless every address of ``host`` is allowed."""
        for address in addresses:
            rule = self.rule_for(address)
            if rule is not None:
                raise TargetRefused(rule, host, str(address))

    def check_url(self, url: str) -> None:
        """The check made when a subscription is made (blocking: resolves the host). A host
        that does not resolve (yet) passes: every delivery is checked again."""
        host, port = host_port(url)
        try:
            addresses = resolve(host, port)
        except OSError:
            return
        self.check(host, addresses)

    async def pinned(self, url: str) -> tuple[list[httpx.URL], dict[str, str], dict[str, str]]:
        """The check made before every delivery: ``(urls to connect to, headers,
        extensions)``, one URL per address the host resolves to now, in the resolver's
        order (every one checked), with ``Host`` and the TLS server name of the original
        host. Raises :class:`TargetRefused`, or ``OSError`` when the host does not resolve."""
        u = httpx.URL(url)
        host, port = host_port(url)
        addresses = await asyncio.get_running_loop().run_in_executor(None, resolve, host, port)
        self.check(host, addresses)
        extensions = {"sni_hostname": host} if u.scheme == "https" else {}
        return [u.copy_with(host=str(a)) for a in addresses], {"Host": u.netloc.decode("ascii")}, extensions


def host_port(url: str) -> tuple[str, int]:
    u = httpx.URL(url)
    return u.host, u.port or (443 if u.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal: itself), in the resolver's
    order. Raises ``OSError`` when it does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise OSError(f"{host} resolves to no address")
    return out
