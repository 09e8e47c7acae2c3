"""`safehome bench attack`: other homes' alarms while one stolen gateway password attacks.

The deployment's own broker (generated config, ACL, isolation plugin) and a real hub
(`safehome hub run`, SQLite). Victim gateways send panic events; each one's latency is
publish → the hub's `stored` ack, at its first send (no resend here: a lost first send
is counted lost). Two phases in the same run, same load: baseline, then the same while a
separate process holding one gateway's password makes every attack of issue 12 in a loop
(subscribe to the hub's `$share/` group, another gateway's downlink, `#`, `$SYS/#`; publish
as another gateway and retained; connect with another gateway's and the hub's client ids).
"""

from __future__ import annotations

import multiprocessing as mp
import operator
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from queue import Empty
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocols as p
from bench import report
from bench.system import percentile
from hub.broker.config import BrokerSettings
from hub.broker.credentials import PasswordFile
from hub.broker.deploy import run_argv, write_deployment
from hub.mqtt import hub_client_id
from safehome.testing.poll import wait_for

THIEF = "bench-thief"
WORKER = "bench-atk"
REFUSED = 0x80


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _connect(port: int, user: str, password: str, client_id: str, timeout: float = 5.0) -> tuple[mqtt.Client, bool]:
    """A started client and whether the broker accepted it."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.username_pw_set(user, password)
    result: list[bool] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: result.append(not rc.is_failure)
    c.on_disconnect = lambda _c, _u, _f, rc, _p: result.append(False)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    wait_for(lambda: bool(result), timeout, f"CONNACK for {client_id}")
    if not result[0]:
        c.loop_stop()
    return c, result[0]


def attacker(port: int, password: str, victim: str, stop: Any, ready: Any, out: Any) -> None:
    """Every attack in a loop until ``stop``: one thread subscribes and publishes, one thread
    per client id (the victim's, the hub's) keeps trying to connect with it. Sets ``ready``
    once each thread made its first attempt (the process's start-up is not the attack); puts
    {what: (attempts, granted)} in ``out``."""
    forbidden = [f"$share/hub/{p.ROOT}/gw/+/event", f"$share/hub/{p.ROOT}/gw/+/+", str(p.Topic.of(victim, "ack")),
                 "#", "$SYS/#"]  # fmt: skip
    ids = [victim, hub_client_id(WORKER), hub_client_id(WORKER, "telemetry"), hub_client_id(WORKER, "acks")]
    counts: dict[str, list[int]] = {"subscribe": [0, 0], "publish": [0, 0], "connect": [0, 0]}
    lock = threading.Lock()
    started = threading.Barrier(1 + len(ids), action=ready.set)

    def tally(what: str, granted: bool) -> None:
        with lock:
            counts[what][0] += 1
            counts[what][1] += granted

    def subscribe_and_publish() -> None:
        thief, ok = _connect(port, THIEF, password, THIEF)
        assert ok, "the thief's own login must work"
        subacks: dict[int, list[int]] = {}
        thief.on_subscribe = lambda _c, _u, mid, rcs, _p: subacks.__setitem__(mid, [int(r.value) for r in rcs])
        first = True
        while not stop.is_set():
            for topic in forbidden:
                mid = thief.subscribe(topic, 1)[1]
                assert mid is not None
                wait_for(partial(operator.contains, subacks, mid), 10, "SUBACK")
                tally("subscribe", subacks[mid] != [REFUSED])
            # dropped by the broker: on another gateway's topic, and retained on its own event
            thief.publish(str(p.Topic.of(victim, "event")), b"{}", qos=1).wait_for_publish(10)
            thief.publish(str(p.Topic.of(THIEF, "event")), b"{}", qos=1, retain=True).wait_for_publish(10)
            tally("publish", False)  # MQTT 3.1.1 gets no answer: the broker log counts the drops
            tally("publish", False)
            if first:
                started.wait()
                first = False
        thief.loop_stop()
        thief.disconnect()

    def take_over(client_id: str) -> None:
        first = True
        while not stop.is_set():
            c, accepted = _connect(port, THIEF, password, client_id)
            tally("connect", accepted)
            c.loop_stop()
            c.disconnect()
            if first:
                started.wait()
                first = False

    threads = [threading.Thread(target=subscribe_and_publish)]
    threads += [threading.Thread(target=take_over, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({k: tuple(v) for k, v in counts.items()})


@dataclass
class Victims:
    """Gateways that send panic events and time each one to its `stored` ack."""

    port: int
    passwords: dict[str, str]
    sent: dict[str, float] = field(default_factory=dict)
    stored: dict[str, float] = field(default_factory=dict)
    clients: dict[str, mqtt.Client] = field(default_factory=dict)
    seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Victims:
        for gw, pw in self.passwords.items():
            c, ok = _connect(self.port, gw, pw, gw)
            assert ok, f"victim {gw} refused"
            c.on_message = self._on_ack
            c.subscribe(str(p.Topic.of(gw, "ack")), 1)
            self.clients[gw] = c
        return self

    def _on_ack(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        ack = p.decode(p.Channel.ACK, bytes(msg.payload), p.Ack)
        with self.lock:
            for item in ack.items:
                if item.status is p.AckStatus.STORED and item.id in self.sent:
                    self.stored.setdefault(item.id, now)

    def fire(self, gw: str) -> str:
        self.seq += 1
        ev = p.Event.model_validate(
            {"gw": gw, "seq": self.seq, "id": p.new_event_id(), "ts": int(time.time() * 1000), "synced": True,
             "sensor": "panic-1", "kind": "panic", "state": "alarm"},
            strict=False,
        )  # fmt: skip
        with self.lock:
            self.sent[ev.id] = time.perf_counter()
        self.clients[gw].publish(str(p.Topic.of(gw, "event")), p.encode(ev), qos=1)
        return ev.id

    def phase(self, alarms: int, spacing: float, settle: float) -> tuple[list[float], int]:
        """Latencies (ms) of ``alarms`` events and how many had no stored ack after ``settle`` s."""
        gws = list(self.clients)
        ids = []
        for i in range(alarms):
            ids.append(self.fire(gws[i % len(gws)]))
            time.sleep(spacing)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and not all(i in self.stored for i in ids):
            time.sleep(0.05)
        with self.lock:
            lat = [1000 * (self.stored[i] - self.sent[i]) for i in ids if i in self.stored]
        return lat, len(ids) - len(lat)

    def stop(self) -> None:
        for c in self.clients.values():
            c.loop_stop()
            c.disconnect()


def _hub(tmp: Path, port: int, secret: Path) -> subprocess.Popen[bytes]:
    cfg = tmp / "hub.toml"
    # env dev: a throwaway hub on loopback; it skips the production secret checks (key file), not the code path
    cfg.write_text(
        f'[hub]\nenv = "dev"\nworker_id = "{WORKER}"\n[hub.database]\nurl = "sqlite:///{tmp / "hub.db"}"\n'
        f'[hub.mqtt]\nport = {port}\npassword_file = "{secret}"\n[hub.http]\nenabled = false\n'
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "safehome", "hub", "run", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=(tmp / "hub.log").open("wb"))  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _figures(lat: list[float], lost: int) -> str:
    return f"{len(lat)} stored, {lost} lost; p50 {percentile(lat, 50):.1f} / p99 {percentile(lat, 99):.1f} / max {max(lat, default=float('nan')):.1f} ms"


def without_isolation(config: Path) -> None:
    """The config as it was before issue 12 (password and ACL files only): to show the harm."""
    lines = config.read_text().splitlines()
    config.write_text("\n".join(ln for ln in lines if not ln.startswith(("plugin ", "plugin_opt_"))) + "\n")


def run(victims: int, alarms: int, spacing: float, isolation: bool = True, settle: float = 30.0) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="safehome-bench-attack-"))
    port = _free_port()
    s = BrokerSettings(directory=tmp / "broker", tls=False, plain_port=port, persistence=False,
                       user="root" if os.geteuid() == 0 else "mosquitto", log_dest=f"file {tmp / 'mosquitto.log'}")  # fmt: skip
    written = write_deployment(s)
    if not isolation:
        without_isolation(s.config_path)
    pw = PasswordFile(s.password_path)
    passwords = {f"bench-home-{g:03d}": f"pw-home-{g}" for g in range(victims)}
    for gw, secret in {**passwords, THIEF: "stolen-password"}.items():
        pw.set(gw, secret)
    broker = subprocess.Popen(run_argv(s), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hub: subprocess.Popen[bytes] | None = None
    homes: Victims | None = None
    ctx = mp.get_context("spawn")
    try:
        wait_for(lambda: _listening(port), 10, "broker")
        hub = _hub(tmp, port, written.hub_secret)
        homes = Victims(port, passwords).start()
        first = next(iter(passwords))
        deadline = time.monotonic() + 60
        while not homes.stored:  # the hub subscribes some time after it starts: fire until one is stored
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub stored nothing within 60 s; see {tmp / 'hub.log'}")
            homes.fire(first)
            time.sleep(0.5)
        homes.phase(20, spacing, settle)  # warm-up, not counted
        base_lat, base_lost = homes.phase(alarms, spacing, settle)
        stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
        thief = ctx.Process(target=attacker, args=(port, "stolen-password", first, stop, ready, out))
        thief.start()
        try:
            if not ready.wait(60):
                raise RuntimeError("the attacking process did not start within 60 s")
            atk_lat, atk_lost = homes.phase(alarms, spacing, settle)
        finally:
            stop.set()
            try:
                attacks: dict[str, tuple[int, int]] = out.get(timeout=60)
            except Empty:
                attacks = {}
            thief.join(30)
        log = (tmp / "mosquitto.log").read_text(errors="replace")
    finally:
        if homes is not None:
            homes.stop()
        if hub is not None:
            _stop(hub)
        _stop(broker)
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = percentile(atk_lat, 99) / percentile(base_lat, 99) if base_lat else float("nan")
    title = "Attack: other homes' alarms while one stolen gateway password attacks"
    report.write(
        title if isolation else title + " (WITHOUT the isolation plugin: the harm it prevents)",
        [
            ("load", f"{victims} victim gateways, {alarms} panic events per phase, one every {spacing * 1000:.0f} ms"),
            ("baseline: publish → stored ack", _figures(base_lat, base_lost)),
            ("under attack: publish → stored ack", _figures(atk_lat, atk_lost)),
            ("p99 under attack / baseline", f"{ratio:.2f}"),
            *((f"attacks: {what}", f"{n:,} tried, {ok} granted") for what, (n, ok) in attacks.items() if what != "publish"),
            ("attacks: publish (as another gateway; retained)", f"{attacks.get('publish', (0, 0))[0]:,} sent"),
            ("refused by the isolation plugin (broker log)", f"{log.count('safehome isolation: refused'):,}"),
        ],
        notes=f"Broker (generated config, {'with' if isolation else 'WITHOUT'} the isolation plugin), hub (`safehome hub run`,\n"
        "SQLite), victims and the attacking process share this machine's cores (the load average above\n"
        "says what else ran): compare the two phases of one run, not runs. Lost = no\n"
        "`stored` ack for the first send within 30 s (no resend in this benchmark; the edge agent\n"
        "would resend). The attacker runs one thread of subscribes and publishes and one thread per\n"
        "client id it tries to take over (a victim's, three of the hub's).",
    )
