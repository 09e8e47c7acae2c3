"""`safehome broker` commands: write the config, run the broker (Mosquitto, or one node of a
NATS cluster with ``backend = "nats"``), show its status, manage gateway credentials."""

from __future__ import annotations

import os
from pathlib import Path

import click

from hub.broker import nats
from hub.broker.config import BrokerSettings
from hub.broker.credentials import Credentials, PasswordFile
from hub.broker.deploy import run_argv, write_deployment
from hub.broker.errors import BrokerError
from hub.broker.natswatch import TakeoverWatch
from protocols.logs import configure_logging

_config_opt = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="TOML settings file (table [broker] or top level); SAFEHOME_BROKER_* env overrides it.",
)
_dir_opt = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of mosquitto.conf, passwd, acl, pid file.",
)


def _settings(config_path: Path | None, **overrides: object) -> BrokerSettings:
    try:
        return BrokerSettings.load(config_path, **overrides)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(name="broker")
def broker() -> None:
    """Write the Mosquitto config for a deployment, run it, manage gateway credentials."""


@broker.command(name="config")
@_config_opt
@_dir_opt
@click.option("--gateways", type=int, help="Gateways the deployment serves (sizes the queues).")
@click.option("--no-tls", is_flag=True, default=False, help="Loopback-only lab setup without TLS.")
def config_cmd(config_path: Path | None, directory: Path | None, gateways: int | None, no_tls: bool) -> None:
    """Write mosquitto.conf, the ACL and the password file (with the hub account)."""
    s = _settings(config_path, directory=directory, gateways=gateways, tls=False if no_tls else None)
    if s.backend == "nats":
        _config_nats(s)
        return
    try:
        w = write_deployment(s)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {w.config}, {w.acl}, {w.passwords}")
    click.echo(f"max_queued_messages {s.queued_messages} for {s.gateways} gateways")
    if w.hub_secret_created:
        click.echo(f"new hub account password in {w.hub_secret} (point the hub's mqtt.password_file at it)")


def _config_nats(s: BrokerSettings) -> None:
    try:
        w = nats.write_deployment(s)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {', '.join(str(c) for c in w.configs)}, {w.users}, {w.passwords}")
    click.echo(
        f"login rate guard ({s.nats_login_rate} new MQTT connections/s per node): load "
        + ", ".join(str(nats.nft_path(s, n)) for n in s.nodes)
        + " with `nft -f` on each node's machine (docs/broker.md)"
    )
    if w.hub_secret_created:
        click.echo(f"new hub account password in {w.hub_secret} (point the hub's mqtt.password_file at it)")


_node_opt = click.option("--node", help="backend nats: the node (its name in [[nodes]]) this process runs.")


@broker.command(name="run")
@_config_opt
@_dir_opt
@_node_opt
def run_cmd(config_path: Path | None, directory: Path | None, node: str | None) -> None:
    """Replace this process with the broker, on the configuration `broker config` wrote:
    mosquitto, or with --node one nats-server of the cluster.

    With --config the configuration is (re)written first; without it the one in the
    directory runs as written (so `config --no-tls` then `run` needs nothing more).
    """
    try:
        if node is not None:
            argv = _nats_run_argv(config_path, directory, node)
        elif config_path is None:
            # only the directory's paths are needed: the settings were applied by `config`
            s = _settings(None, directory=directory, tls=False)
            if not s.config_path.exists():
                raise BrokerError(f"no {s.config_path}: run `safehome broker config` first, or pass --config")
        else:
            s = _settings(config_path, directory=directory)
            if s.backend == "nats":
                raise BrokerError("backend nats: say which node this process runs (--node NAME)")
            write_deployment(s)
        if node is None:
            argv = run_argv(s)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    os.execv(argv[0], argv)


def _nats_run_argv(config_path: Path | None, directory: Path | None, name: str) -> list[str]:
    if config_path is None:
        s = _settings(None, directory=directory, tls=False)
        conf = s.directory / f"nats-{name}.conf"
        if not conf.exists():
            raise BrokerError(f"no {conf}: run `safehome broker config` first, or pass --config")
        return [nats.nats_binary(), "-c", str(conf)]
    s = _settings(config_path, directory=directory)
    if s.backend != "nats":
        raise BrokerError(f"--node is for backend nats; {config_path} says backend = {s.backend!r}")
    node = nats.find_node(s, name)
    nats.write_deployment(s, [node])
    return nats.run_argv(s, node)


@broker.command(name="status")
@_config_opt
@_dir_opt
def status_cmd(config_path: Path | None, directory: Path | None) -> None:
    """Is the broker running? backend nats: every local node's pid, health, JetStream meta
    leader and connections (from its loopback monitoring port) and how many SYNs its login
    rate guard has dropped (nftables' counter)."""
    s = _settings(config_path, directory=directory, tls=False)
    if s.backend != "nats":
        try:
            pid = int(s.pid_path.read_text().strip())
            running = Path(f"/proc/{pid}/comm").read_text().strip() == "mosquitto"
        except (OSError, ValueError):
            pid, running = 0, False
        click.echo(f"mosquitto: {'running, pid ' + str(pid) if running else 'not running'}")
        if not running:
            raise SystemExit(1)
        return
    down = 0
    for node in s.nodes:
        st = nats.node_status(s, node)
        down += st.healthy is not True
        click.echo(st.line())
    if down:
        raise SystemExit(1)


@broker.group(name="gateway")
def gateway() -> None:
    """Create, rotate, revoke a gateway's MQTT credentials (the broker reloads, no restart)."""


def _tell_not_reloaded(creds: Credentials) -> None:
    """After a change on NATS: name the nodes it did not reach, on stderr (the password, on
    stdout, stays the only thing a script reads)."""
    if isinstance(creds, nats.NatsCredentials) and (left := creds.not_reloaded()):
        click.echo(f"warning: {left}", err=True)


def _credentials(config_path: Path | None, directory: Path | None) -> Credentials:
    # Credentials need the directory, pid file and broker user only: do not insist on
    # the TLS files here (`--dir` alone must do).
    s = _settings(config_path, directory=directory, tls=False)
    if s.backend == "nats":
        return nats.NatsCredentials(s)
    if (s.directory / nats.PASSWD_FILE).exists() and not s.password_path.exists():
        raise click.ClickException(
            f"{s.directory} holds a NATS deployment: pass --config (its nodes are reloaded)"
        )
    return Credentials(PasswordFile(s.password_path, owner=s.user), s.pid_path)


@gateway.command(name="add")
@_config_opt
@_dir_opt
@click.argument("gateway_id")
def add_cmd(config_path: Path | None, directory: Path | None, gateway_id: str) -> None:
    """Create credentials; prints the new password once (username = gateway id)."""
    try:
        creds = _credentials(config_path, directory)
        click.echo(creds.create(gateway_id))
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    _tell_not_reloaded(creds)


@gateway.command(name="rotate")
@_config_opt
@_dir_opt
@click.argument("gateway_id")
def rotate_cmd(config_path: Path | None, directory: Path | None, gateway_id: str) -> None:
    """Replace the password; prints the new one. The old one stops working at once."""
    try:
        creds = _credentials(config_path, directory)
        click.echo(creds.rotate(gateway_id))
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    _tell_not_reloaded(creds)


@gateway.command(name="revoke")
@_config_opt
@_dir_opt
@click.argument("gateway_id")
def revoke_cmd(config_path: Path | None, directory: Path | None, gateway_id: str) -> None:
    """Remove the credentials; a connected gateway is disconnected at the reload."""
    try:
        creds = _credentials(config_path, directory)
        creds.revoke(gateway_id)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {gateway_id}")
    _tell_not_reloaded(creds)


@gateway.command(name="list")
@_config_opt
@_dir_opt
def list_cmd(config_path: Path | None, directory: Path | None) -> None:
    """Usernames in the password file."""
    try:
        for user in _credentials(config_path, directory).passwords.users():
            click.echo(user)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


@broker.command(name="watch")
@_config_opt
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between two scans.")
def watch_cmd(config_path: Path | None, interval: float) -> None:
    """backend nats: revoke a gateway that logs in with another's client id (docs/broker.md)."""
    configure_logging()
    s = _settings(config_path, tls=False)
    if s.backend != "nats":
        raise click.ClickException(
            "watch is for backend nats (Mosquitto's isolation plugin refuses the takeover)"
        )
    TakeoverWatch(s).run(interval)
