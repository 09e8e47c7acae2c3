"""The isolation plugin: what Mosquitto 2.0's ACL file cannot enforce, built and configured.

Mosquitto 2.0.11's ``acl_file`` grants every SUBSCRIBE (its source says "FIXME - implement
ACL subscription strings"): a gateway could join the hub's ``$share/hub/…`` group and take
its share of every home's events. Nothing binds a client id to a username either: a
gateway could connect with another gateway's id, or a hub connection's, and take the
session over. The dynamic-security plugin of 2.0.11 does not expand ``%u``: one role per
gateway, and with 100,000 gateways every credential change stalled the broker ~16 s
(measured here). ``plugin/safehome_isolation.c`` (about 150 lines, plugin API v5) adds the
three checks and leaves everything else to the password and ACL files; see its header.

A second plugin, ``plugin/safehome_ratelimit.c``, keeps one gateway's flood out of the hub's
queue at the broker: a token bucket per gateway on the channels of the hub's priority lane;
a PUBLISH over it is answered (PUBACK) and delivered to nobody, and the refused counts go to
the hub on :data:`SHED_TOPIC` (``gateway_flooding``). See its header and docs/broker.md.

Both are compiled on the broker's machine (``gcc`` and Debian's ``mosquitto-dev``), because
a Mosquitto plugin must match the broker's headers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from hub.broker.errors import BrokerError
from protocols import DOWNLINK_CHANNELS, Channel
from protocols.topics import GATEWAY_PREFIX

SOURCE = Path(__file__).parent / "plugin" / "safehome_isolation.c"
RATELIMIT_SOURCE = Path(__file__).parent / "plugin" / "safehome_ratelimit.c"
#: Client ids of the hub's own connections start with this; no gateway id may.
HUB_CLIENT_PREFIX = "hub-"
#: The only uplink channel a gateway may publish retained (its online state, and its Will).
RETAINED_CHANNELS = (Channel.STATUS,)
#: Headers the plugin needs, and the Debian packages that provide them.
HEADERS = ("mosquitto_broker.h", "mosquitto_plugin.h", "mosquitto.h")
PACKAGES = "gcc mosquitto-dev libmosquitto-dev"
#: Where the rate-limit plugin tells the hub how many messages of a gateway it refused:
#: ``{"gw": "<gateway id>", "shed": <count>}``. Only the hub may read it (ACL); no gateway
#: can write it (a gateway writes only under its own id).
SHED_TOPIC = "safehome/v1/broker/shed"
#: The channels the rate limit counts: those of the hub's priority lane (events, status,
#: results: one broker queue, where an alarm must never wait behind a flood). Telemetry has
#: its own connection and queue (hub.ingest.service.LANES; a test keeps the two equal).
LIMITED_CHANNELS = (Channel.EVENT, Channel.RESULT, Channel.STATUS)


def source_digest(source: Path = SOURCE) -> str:
    """Of the source and the headers next to it (which it includes)."""
    h = hashlib.sha256(source.read_bytes())
    for header in sorted(source.parent.glob("*.h")):
        h.update(header.read_bytes())
    return h.hexdigest()[:16]


def build(dest: Path, cc: str | None = None, source: Path = SOURCE) -> Path:
    """Compile the plugin ``source`` to ``dest`` unless ``dest`` was built from the same source.

    The digest of the source is kept next to it (``dest`` + ``.src``) so that an upgrade
    rebuilds; the file is replaced atomically, a running broker keeps its mapped copy.
    """
    stamp = dest.with_name(dest.name + ".src")
    digest = source_digest(source)
    if dest.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return dest
    compiler = cc or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise BrokerError(f"no C compiler to build the broker plugin {source.name}: apt-get install {PACKAGES}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    cmd = [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(tmp), str(source)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"cannot build the broker plugin {source.name} with {compiler}: {exc}") from exc
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        missing = "No such file" in done.stderr and any(h in done.stderr for h in HEADERS)
        hint = f" (Mosquitto headers missing: apt-get install {PACKAGES})" if missing else ""
        raise BrokerError(f"building {source.name} failed{hint}: {done.stderr.strip()[-800:]}")
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)
    stamp.write_text(digest + "\n")
    return dest


def render(plugin_path: Path, hub_users: tuple[str, ...]) -> str:
    """The ``plugin`` lines of mosquitto.conf. Mosquitto 2.0 registers a plugin's checks
    before the password and ACL files' own, wherever the lines are: its refusals come first,
    its "defer" hands the decision on (checked by tests/hub/broker/test_isolation.py)."""
    downlink = ",".join(sorted(c.value for c in DOWNLINK_CHANNELS))
    retain = ",".join(c.value for c in RETAINED_CHANNELS)
    return (
        "\n".join(
            [
                "# Gateways: client id = username; subscribe only to their own downlink;",
                "# retained only on their status (hub/broker/plugin/safehome_isolation.c).",
                f"plugin {plugin_path}",
                f"plugin_opt_hub_users {','.join(hub_users)}",
                f"plugin_opt_reserved_prefix {HUB_CLIENT_PREFIX}",
                f"plugin_opt_root {GATEWAY_PREFIX}/",
                f"plugin_opt_downlink {downlink}",
                f"plugin_opt_retain {retain}",
            ]
        )
        + "\n"
    )


def render_ratelimit(plugin_path: Path, exempt_users: tuple[str, ...], rate: float, burst: int) -> str:
    """The ``plugin`` lines of the rate limit (``rate`` 0: loaded, limits nothing). Each
    gateway may publish ``burst`` messages at once on :data:`LIMITED_CHANNELS`, then ``rate``
    a second; what is over is refused (PUBACK, not delivered) and counted on :data:`SHED_TOPIC`."""
    channels = ",".join(sorted(c.value for c in LIMITED_CHANNELS))
    return (
        "\n".join(
            [
                "# One gateway's flood must not fill the hub's queue (hub/broker/plugin/safehome_ratelimit.c).",
                f"plugin {plugin_path}",
                f"plugin_opt_rate {rate:g}",
                f"plugin_opt_burst {burst}",
                f"plugin_opt_channels {channels}",
                f"plugin_opt_exempt_users {','.join(exempt_users)}",
                f"plugin_opt_notice_topic {SHED_TOPIC}",
            ]
        )
        + "\n"
    )
