"""The hub side of the demo: the real hub (``safehome hub run``) on SQLite, or a stand-in.

With ``hub/runner.py`` present: migrate a SQLite database, import the generated registry,
create one demo token per role and region, write a dev-mode hub TOML and start
``safehome hub run`` as a child process (it dies with the demo). Without it, a stand-in
acks every event (``stored``), so gateways stop resending, but nothing is routed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from firmware_sim.broker import free_port
from firmware_sim.procs import die_with_parent
from firmware_sim.registry import Registry
from firmware_sim.standin import StandIn


@dataclass
class HubHandle:
    kind: str  #: "hub" or "stand-in"
    lines: list[str] = field(default_factory=list)
    standin: StandIn | None = None
    proc: subprocess.Popen[bytes] | None = None
    api_url: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)  #: "role region" → token
    log_path: Path | None = None
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)  #: more hub processes
    bases: list[str] = field(default_factory=list)  #: each process's http://host:port, as processes

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every ``safehome hub run`` process of this handle."""
        return [p for p in (self.proc, *self.others) if p is not None]

    def describe(self) -> list[str]:
        return self.lines

    def token(self, role: str, region: str) -> str | None:
        return self.tokens.get(f"{role} {region}")

    def stop(self) -> None:
        if self.standin is not None:
            self.standin.close()
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def hub_available() -> bool:
    return importlib.util.find_spec("hub.runner") is not None


def _tokens(db_url: str, reg: Registry, workstations: list[str]) -> dict[str, str]:
    from hub.api.tokens import create_token
    from hub.db.engine import make_engine, make_session_factory

    wanted = [("operator", f"workstation:{ws}") for ws in workstations]
    wanted += [("supervisor", f"subdistrict:{sd.id}") for sd in reg.subdistricts]
    wanted += [("supervisor", f"district:{reg.district.id}"), ("viewer", f"district:{reg.district.id}")]
    engine = make_engine(db_url)
    out: dict[str, str] = {}
    try:
        with make_session_factory(engine)() as s, s.begin():
            for role, region in wanted:
                tok, _p = create_token(s, role, region, f"demo {role} {region}", dt.datetime.now(dt.UTC))
                out[f"{role} {region}"] = tok
    finally:
        engine.dispose()
    return out


def _users(db_url: str, reg: Registry) -> list[tuple[str, str, str, str]]:
    """One console user per role (name, password, role, region), a fresh password per run."""
    import secrets

    from hub.api.users import create_user
    from hub.db.engine import make_engine, make_session_factory

    ws, sd, district = reg.workstations[0].id, reg.subdistricts[0].id, reg.district.id
    wanted = [
        ("ws-operator", "workstation_operator", f"workstation:{ws}"),
        ("sd-operator", "subdistrict_operator", f"subdistrict:{sd}"),
        ("sd-supervisor", "subdistrict_supervisor", f"subdistrict:{sd}"),
        ("district-admin", "district_admin", f"district:{district}"),
        ("installer", "installer", f"district:{district}"),
        ("auditor", "auditor", f"district:{district}"),
    ]
    out = []
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s, s.begin():
            for name, role, region in wanted:
                password = secrets.token_urlsafe(9)
                create_user(s, name, password, role, region, dt.datetime.now(dt.UTC),
                            display_name=f"demo {name}", created_by="demo")  # fmt: skip
                out.append((name, password, role, region))
    finally:
        engine.dispose()
    return out


def mqtt_toml(host: str, port: int) -> list[str]:
    """The ``[hub.mqtt]`` keys of a hub on one Mosquitto (the demo's and the benches')."""
    return [f'host = "{host}"', f"port = {port}", 'username = "hub"']


#: TOML lines that let a hub's webhooks post to receivers on this machine (refused by
#: default: hub/notify/targets.py); the benches' receivers listen on 127.0.0.1.
LOOPBACK_WEBHOOKS_TOML = ["[hub.alarms.webhooks]", 'allow_networks = ["127.0.0.0/8", "::1/128"]']


def nats_mqtt_toml(mqtt: list[tuple[str, int]], nats_urls: list[str], password: str) -> list[str]:
    """The ``[hub.mqtt]`` keys of a hub on a NATS cluster (docs/hub.md, "On a NATS cluster"):
    every node's MQTT listener (acks, commands) and client URL (the ingest's queue group)."""
    return [
        'backend = "nats"',
        "servers = [" + ", ".join(f'"{h}:{p}"' for h, p in mqtt) + "]",
        "nats_servers = [" + ", ".join(f'"{u}"' for u in nats_urls) + "]",
        'username = "hub"',
        f'password = "{password}"',
    ]


def _hub_process(
    workdir: Path,
    name: str,
    db_url: str,
    mqtt: list[str],
    lanes: list[str] | None = None,
    ts_url: str | None = None,
    extra: list[str] | None = None,
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start one ``safehome hub run`` (config ``{name}.toml``, log ``{name}.log``); wait until healthy.
    ``mqtt``: the ``[hub.mqtt]`` keys (:func:`mqtt_toml`, :func:`nats_mqtt_toml`).
    ``extra``: more TOML lines (tables other than those written here), e.g. ``[hub.alarms]``."""
    http_port = free_port()
    default_ts = f"sqlite:///{workdir / 'timeseries.db'}"
    config = workdir / f"{name}.toml"
    ingest = ["[hub.ingest]", f"lanes = {lanes!r}".replace("'", '"')] if lanes else []
    config.write_text(
        "\n".join([
            "[hub]", 'env = "dev"', f'worker_id = "demo-{name}"', 'log_level = "WARNING"',
            "[hub.database]", f'url = "{db_url}"',
            # time series in a file of their own: a telemetry backlog never holds the SQLite
            # write lock that the alarm path (alarms, outbox, acks) needs
            "[hub.timeseries]", f'url = "{ts_url or default_ts}"',
            "[hub.mqtt]", *mqtt,
            "[hub.http]", 'host = "127.0.0.1"', f"port = {http_port}",
            *ingest,
            *(extra or []),
        ]) + "\n"
    )  # fmt: skip
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "safehome", "hub", "run", "--config", str(config)],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited at start; see {log_path}:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base, log_path
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the hub did not become healthy in 60 s; see {log_path}")
        time.sleep(0.2)


def start_real_hub(
    workdir: Path,
    host: str,
    port: int,
    registry: Path,
    reg: Registry,
    split_lanes: bool = False,
    db_url: str | None = None,
    *,
    mqtt: list[str] | None = None,
    workers: int = 1,
    extra: list[str] | None = None,
) -> HubHandle:
    """``split_lanes``: two hub processes on the one database, the priority lane (events,
    status: the alarm path) in one and the telemetry lane in the other. ``workers``: that many
    identical processes (every lane each, one shared subscription or queue group). ``mqtt``:
    the ``[hub.mqtt]`` keys (default: Mosquitto at host:port); ``extra``: more TOML lines."""
    from hub.db.engine import make_engine, make_session_factory
    from hub.db.migrate import upgrade
    from hub.registry.service import import_register

    db_url = db_url or f"sqlite:///{workdir / 'hub.db'}"
    # on PostgreSQL the readings go to the same database (no single write lock to avoid)
    ts_url = db_url if not db_url.startswith("sqlite") else None
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        import_register(make_session_factory(engine), [registry])
    finally:
        engine.dispose()
    tokens = _tokens(db_url, reg, [w.id for w in reg.workstations])
    users = _users(db_url, reg)
    mqtt = mqtt or mqtt_toml(host, port)
    proc, base, log_path = _hub_process(
        workdir, "hub", db_url, mqtt, ["priority"] if split_lanes else None, ts_url, extra
    )
    handle = HubHandle("hub", proc=proc, api_url=f"{base}/api/v1", tokens=tokens, log_path=log_path, bases=[base])
    more: list[tuple[str, list[str] | None]] = [("hub-telemetry", ["telemetry"])] if split_lanes else []
    more += [(f"hub-{n + 1}", None) for n in range(1, workers)]
    for name, lanes in more:
        try:
            other, other_base, _log = _hub_process(workdir, name, db_url, mqtt, lanes, ts_url, extra)
        except RuntimeError:
            handle.stop()
            raise
        handle.others.append(other)
        handle.bases.append(other_base)
    handle.lines = [
        f"hub: [bold]safehome hub run[/] (pid {proc.pid}, database {db_url}, log {log_path})",
        f"API: [bold]{handle.api_url}[/]   metrics {base}/metrics   health {base}/healthz",
        f"console: [bold]{base}/console/[/]   log in as one of these users (one per role):",
        *[f"  user [bold]{u}[/] password [bold]{pw}[/]  ({role} {region})" for u, pw, role, region in users],
        "  or with one of these API tokens (the console's 'log in with an access token'):",
        *[
            f"  token {k}: {v}"
            for k, v in tokens.items()
            if not k.startswith("operator") or k.endswith("ws-0001")
        ],
        f"  (operator tokens for every workstation are in {workdir / 'tokens.txt'})",
    ]
    (workdir / "tokens.txt").write_text("".join(f"{k}\t{v}\n" for k, v in tokens.items()))
    return handle


def start_hub(workdir: Path, host: str, port: int, registry: Path, reg: Registry) -> HubHandle:
    if hub_available():
        return start_real_hub(workdir, host, port, registry, reg)
    return HubHandle(
        "stand-in",
        ["hub: [yellow]stand-in acker[/] (hub/runner.py not present): events are stored, not routed"],
        StandIn(host, port),
    )
