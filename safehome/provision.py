"""`safehome provision` commands: the installer's path from a registered home to a signed-off
install (docs/provisioning.md).

    provision gateway --home H   register/check the gateway, credentials, bundle, config
    provision push GATEWAY       deliver the gateway's config again (after a register change)
    provision walktest GATEWAY   test mode; wait for each sensor; record the result
    provision signoff GATEWAY    complete the install (only after a passed walk test)
    provision status GATEWAY     where the install stands
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hub.db.cli import db_url_option

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.broker.config import BrokerSettings
    from hub.provision.outcome import Outcome
    from hub.provision.plan import GatewayPlan
    from hub.provision.walktest import WalkResult

_broker_opt = click.option(
    "--broker-config",
    "broker_config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The broker's settings file (as for `safehome broker`); SAFEHOME_BROKER_* env overrides it.",
)
_broker_dir_opt = click.option(
    "--broker-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The broker's directory (passwd, pid file, hub.password) instead of a settings file.",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextmanager
def _transaction(db_url: str) -> Iterator[Session]:
    """One transaction on the migrated hub database; provisioning errors become click errors."""
    from hub.db.cli import migrated_sessions
    from hub.provision.errors import ProvisionError

    with migrated_sessions(db_url) as sessions, sessions() as session:
        try:
            with session.begin():
                yield session
        except ProvisionError as exc:
            raise click.ClickException(str(exc)) from exc


def _broker(config: Path | None, directory: Path | None) -> BrokerSettings:
    from hub.broker.config import BrokerSettings
    from hub.broker.errors import BrokerError

    try:
        # credentials and the loopback listener only: the TLS files are not needed here
        return BrokerSettings.load(config, directory=directory, tls=False)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


def _push(plan: GatewayPlan, broker: BrokerSettings) -> str:
    """Publish the retained Config on the broker's loopback listener; a line saying what happened."""
    from hub.provision.errors import ProvisionError
    from hub.provision.plan import config_of
    from hub.provision.publish import publish_config

    secret_path = broker.hub_secret_path
    try:
        password = secret_path.read_text().strip()
    except OSError as exc:
        return f"config revision {plan.revision} NOT delivered: cannot read {secret_path} ({exc.strerror})"
    try:
        publish_config(config_of(plan), broker.plain_bind, broker.plain_port, password)
    except ProvisionError as exc:
        return f"config revision {plan.revision} NOT delivered ({exc}); run `safehome provision push {plan.gateway_id}`"
    return f"config revision {plan.revision} delivered (retained on the gateway's config topic)"


@click.group(name="provision")
def provision() -> None:
    """Provision gateways for residents' homes (installer tool)."""


@provision.command(name="gateway")
@click.option("--home", "home_id", required=True, help="The home's id in the registry.")
@click.option("--gateway", "gateway_id", default=None, help="Gateway id; needed when the home has none or several.")
@click.option("--hub-host", "hub_hosts", required=True, multiple=True, metavar="HOST[:PORT]",
              help="Name or address the gateway connects to (the broker's TLS listener); repeat it for each "
                   "node of a clustered broker: the gateway fails over between them.")
@click.option("--hub-port", type=int, default=None,
              help="Broker port for gateways, where --hub-host gives none [default: the broker's tls_port].")
@click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Deployment CA certificate for the bundle [default: the broker's cafile].")
@click.option("--no-tls", is_flag=True, help="Lab setup: the gateway connects without TLS (loopback broker).")
@click.option("--downlink-qos", type=click.IntRange(0, 1), default=None,
              help="QoS of the gateway's downlink subscription [default: 0 when the broker settings say "
                   "backend = \"nats\" (docs/broker.md section 6), else 1].")
@click.option("--wiring", "wiring", multiple=True, metavar="SENSOR.KEY=VALUE",
              help="Wiring override, e.g. smoke-2.contact_pin=24 (repeatable).")
@click.option("--pin-factory", type=click.Choice(["lgpio", "rpigpio", "mock"]), default="lgpio", show_default=True,
              help="GPIO library on the Pi: lgpio (Pi 5, and Pi <= 4 with rpi-lgpio), rpigpio (Pi <= 4).")
@click.option("-o", "--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Bundle directory [default: ./bundle-GATEWAY].")
@click.option("--by", default="", help="Installer's name, recorded with the provisioning.")
@click.option("--no-push", is_flag=True, help="Do not deliver the config to the broker now.")
@db_url_option
@_broker_opt
@_broker_dir_opt
def gateway_cmd(
    home_id: str, gateway_id: str | None, hub_hosts: tuple[str, ...], hub_port: int | None,
    ca_file: Path | None, no_tls: bool, downlink_qos: int | None, wiring: tuple[str, ...], pin_factory: str, out: Path | None, by: str, no_push: bool, db_url: str,
    broker_config: Path | None, broker_dir: Path | None,
) -> None:
    """Register (or check) the home's gateway, create its broker credentials and write its bundle.

    Re-provisioning a gateway replaces its password (the old one stops working at once) and
    needs a new walk test. Nothing is changed when the home, a model or the wiring is wrong.
    """
    from hub.broker.credentials import Credentials, PasswordFile
    from hub.broker.errors import BrokerError
    from hub.provision.errors import ProvisionError
    from hub.provision.plan import parse_wiring
    from hub.provision.service import provision as provision_gateway
    from protocols.failover import parse_servers
    from safehome.bundle import HubAddress, check_plan, edge_settings, write_bundle

    broker = _broker(broker_config, broker_dir)
    tls = not no_tls
    ca = ca_file if ca_file is not None else (broker.cafile if tls else None)
    if tls and ca is None:
        raise click.ClickException("TLS needs the deployment CA for the bundle: --ca-file (or cafile in the broker settings)")
    try:
        servers = parse_servers(hub_hosts, hub_port or (broker.tls_port if tls else broker.plain_port))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hub-host") from exc
    hub = HubAddress.for_backend(broker.backend, servers, tls, downlink_qos)
    try:
        overrides = parse_wiring(list(wiring))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--wiring") from exc
    creds = Credentials(PasswordFile(broker.password_path, owner=broker.user), broker.pid_path)
    with _transaction(db_url) as session:
        plan = provision_gateway(session, home_id, gateway_id, _now(), wiring=overrides, by=by)
        check_plan(plan)  # unknown model, wiring clash: raised before any credential changes
        try:
            if plan.gateway_id in creds.passwords.users():
                password = creds.rotate(plan.gateway_id)
                replaced = True
            else:
                password = creds.create(plan.gateway_id)
                replaced = False
        except BrokerError as exc:
            raise ProvisionError(f"credentials of {plan.gateway_id!r}: {exc}") from exc
        settings = edge_settings(plan, hub, password, ca=ca is not None, pin_factory=pin_factory)
        target = out or Path(f"bundle-{plan.gateway_id}")
        files = write_bundle(target, plan, settings, hub=hub, ca_file=ca, credential="password", by=by)
    click.echo(f"gateway {plan.gateway_id} of home {plan.home_id} ({plan.address})"
               + (": registered now" if plan.created else ""))
    click.echo(f"  sensors: {', '.join(f'{s.id} ({s.model})' for s in plan.sensors)}")
    click.echo(f"  credentials: {'new password, the old one is revoked' if replaced else 'created'}"
               + ("" if broker.pid_path.exists() else
                  f" (no {broker.pid_path}: the broker is not running; it reads them when it starts)"))
    click.echo(f"  bundle: {', '.join(str(f) for f in files)}")
    if not no_push:
        click.echo(f"  {_push(plan, broker)}")
    click.echo(f"next: install the bundle on the Pi, then `safehome provision walktest {plan.gateway_id}`")


@provision.command(name="push")
@click.argument("gateway_id")
@click.option("--new-revision", is_flag=True, help="Re-read the registry's sensors into a new config revision.")
@db_url_option
@click.option("--wait", "wait_s", type=click.FloatRange(min=0, max=3600), default=30, show_default=True,
              help="Seconds to wait for the gateway to report applied/refused (0: do not wait).")
@click.option("--poll", "poll_s", type=click.FloatRange(min=0.05, max=60), default=0.5, show_default=True,
              help="Seconds between looks at the gateway's reported state.")
@_broker_opt
@_broker_dir_opt
def push_cmd(gateway_id: str, new_revision: bool, db_url: str, wait_s: float, poll_s: float,
             broker_config: Path | None, broker_dir: Path | None) -> None:
    """Deliver the gateway's config again (retained); with --new-revision after a register change.
    Then wait for the gateway's answer: exit 1 when it refused the config (or it was not
    delivered), 3 when no answer came in time (the gateway applies it at its next connect)."""
    from hub.provision.service import bump_revision, plan_of
    from safehome.bundle import check_plan

    broker = _broker(broker_config, broker_dir)
    with _transaction(db_url) as session:
        plan = bump_revision(session, gateway_id) if new_revision else plan_of(session, gateway_id)
        check_plan(plan)
    line = _push(plan, broker)
    click.echo(f"{gateway_id}: {line}")
    if "NOT" in line:
        raise SystemExit(1)
    if wait_s > 0:
        answer = _await_outcome(db_url, gateway_id, wait_s, poll_s)
        click.echo(f"{gateway_id}: {answer.text}")
        if answer.state == "refused":
            raise SystemExit(1)
        if answer.state == "pending":
            click.echo(f"{gateway_id}: no answer in {wait_s:g} s (gateway offline or hub ingest not running?); "
                       f"see `safehome provision status {gateway_id}`")
            raise SystemExit(3)


def _await_outcome(db_url: str, gateway_id: str, wait_s: float, poll_s: float) -> Outcome:
    """Poll the gateway's stored status until it answers the current revision or time is up."""
    from hub.provision.service import config_outcome

    deadline = time.monotonic() + wait_s
    while True:
        with _transaction(db_url) as session:
            answer = config_outcome(session, gateway_id)
        if answer.state != "pending" or time.monotonic() >= deadline:
            return answer
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


@provision.command(name="walktest")
@click.argument("gateway_id")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1, max=3600), default=600, show_default=True,
              help="Seconds to wait for every sensor.")
@click.option("--poll", "poll_s", type=click.FloatRange(min=0.05, max=10), default=0.5, show_default=True,
              help="Seconds between looks at the hub's event store.")
@db_url_option
def walktest_cmd(gateway_id: str, timeout_s: float, poll_s: float, db_url: str) -> None:
    """Walk test: the gateway's events are tests (never routed to people) while you trigger
    each sensor; a tick per sensor as it arrives; exit 1 naming what failed."""
    from hub.db.cli import migrated_sessions
    from hub.provision.service import TEST_MODE_MAX_S, finish_walktest, start_test_mode, walktest_status

    with _transaction(db_url) as session:
        # test mode outlives the wait by a margin for the last restores, and is bounded
        until = start_test_mode(session, gateway_id, _now(), min(timeout_s + 120, TEST_MODE_MAX_S))
        expected = walktest_status(session, gateway_id).expected
    click.echo(f"{gateway_id}: test mode until {until:%H:%M:%S} UTC; events are stored and shown, never sent to people")
    click.echo(f"trigger each sensor now ({len(expected)}): {', '.join(expected)}")
    start = time.monotonic()
    ticked: set[str] = set()

    def tick(result: WalkResult) -> None:
        for sensor in result.expected:
            if sensor in result.reported and sensor not in ticked:
                ticked.add(sensor)
                click.echo(f"  ✓ {sensor}  ({len(ticked)}/{len(result.expected)}, {time.monotonic() - start:.1f} s)")

    with migrated_sessions(db_url) as sessions:
        result = _wait(sessions, gateway_id, tick, start + timeout_s, poll_s)
        with sessions() as session, session.begin():
            result = finish_walktest(session, gateway_id, _now())
    tick(result)
    if result.passed:
        click.echo(f"walk test PASSED: {len(result.expected)} sensors in {time.monotonic() - start:.1f} s; "
                   f"next: `safehome provision signoff {gateway_id}`")
        return
    click.echo(f"walk test FAILED after {time.monotonic() - start:.1f} s:", err=True)
    for line in result.problems():
        click.echo(f"  ✗ {line}", err=True)
    raise SystemExit(1)


def _wait(sessions: Callable[[], Session], gateway_id: str, tick: Callable[[WalkResult], None],
          deadline: float, poll_s: float) -> WalkResult:
    """Poll the event store until every sensor reported or the deadline passed. A report
    from the wrong gateway does not end the wait: the right one may still come."""
    from hub.provision.service import walktest_status

    while True:
        with sessions() as session:
            result = walktest_status(session, gateway_id)
        tick(result)
        if not result.missing or time.monotonic() >= deadline:
            return result
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


@provision.command(name="signoff")
@click.argument("gateway_id")
@click.option("--by", default="", help="Installer's name, recorded with the sign-off.")
@db_url_option
def signoff_cmd(gateway_id: str, by: str, db_url: str) -> None:
    """Complete the install after a passed walk test; test mode ends now."""
    from hub.provision.service import signoff

    with _transaction(db_url) as session:
        rec = signoff(session, gateway_id, _now(), by)
        home = rec.home_id
    click.echo(f"{gateway_id} of home {home}: signed off; its alarms now go to people")


@provision.command(name="status")
@click.argument("gateway_id")
@db_url_option
def status_cmd(gateway_id: str, db_url: str) -> None:
    """Where the install of a gateway stands."""
    from hub.provision.service import config_outcome, record_of

    with _transaction(db_url) as session:
        r = record_of(session, gateway_id)
        answer = config_outcome(session, gateway_id)
        now = _now()
        lines = [
            f"gateway {r.gateway_id} of home {r.home_id}",
            f"  provisioned {r.provisioned_at:%Y-%m-%d %H:%M} UTC, config revision {r.revision}, {r.credential}",
            f"  gateway config: {answer.text}",
            "  test mode: " + (f"on until {r.test_mode_until:%H:%M:%S} UTC"
                               if r.test_mode_until and r.test_mode_until > now else "off"),
            "  walk test: " + ("not run" if r.walktest_passed is None else "passed" if r.walktest_passed else
                               "FAILED: " + "; ".join((r.walktest_result or {}).get("problems", []))),
            "  signed off: " + (f"{r.signed_off_at:%Y-%m-%d %H:%M} UTC by {r.signed_off_by or '?'}"
                                if r.signed_off_at else "no"),
        ]
    click.echo("\n".join(lines))


@provision.command(name="inventory")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the inventory here [default: stdout].")
@click.option("--domain", default="", help="DNS suffix of the Pis' hostnames, e.g. 'local' (mDNS) or 'gw.example.org'.")
@click.option("--workstation", default=None, help="Only the homes of this workstation.")
@click.option("--subdistrict", default=None, help="Only the homes of this subdistrict.")
@click.option("--provisioned-only", is_flag=True, help="Only gateways `provision gateway` has run for.")
@db_url_option
def inventory_cmd(output: Path | None, domain: str, workstation: str | None, subdistrict: str | None,
                  provisioned_only: bool, db_url: str) -> None:
    """An Ansible inventory of the register's gateways (group `gateways`, one group per
    workstation and subdistrict) for ansible/site-gateways.yml."""
    import yaml

    from hub.provision.inventory import inventory

    with _transaction(db_url) as session:
        data = inventory(session, domain=domain, workstation=workstation, subdistrict=subdistrict,
                         provisioned_only=provisioned_only)
    n = len(data["all"]["children"]["gateways"]["hosts"])
    text = "---\n# written by `safehome provision inventory`\n" + yaml.safe_dump(data, sort_keys=False,
                                                                                 allow_unicode=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}: {n} gateway(s)", err=True)
