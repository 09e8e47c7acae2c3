"""The demo's live view: a board of what happens to each alarm, fed by fleet hooks.

``DemoBoard`` is plain data (tested without a terminal); :func:`render` turns it into a
rich renderable. Each alarm-class or trouble event is a row that advances as the hub
answers: sent → stored → acknowledged → help on the way (dispatched) → on site → resolved.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

import protocols as p
from firmware_sim.fleet import FleetObserver, SimGateway
from firmware_sim.fleet.gateway import Pending
from firmware_sim.registry import Registry

STATUS_STYLE = {
    "raised": "bold red", "notified": "yellow",
    "sent": "yellow", "resending": "bold yellow", "stored": "cyan", "acknowledged": "bold blue",
    "dispatched": "bold green", "on_site": "green", "resolved": "dim green", "rejected": "red",
}  # fmt: skip
CLASS_STYLE = {"alarm": "bold red", "supervisory": "magenta", "trouble": "yellow", "test": "dim"}


@dataclass
class Row:
    at: float
    gw: str
    home: str
    address: str
    workstation: str
    kind: str
    state: str
    cls: str
    status: str = "sent"
    by: str = ""
    sends: int = 1


@dataclass
class DemoBoard(FleetObserver):
    registry: Registry
    max_rows: int = 18
    rows: dict[str, Row] = field(default_factory=dict)
    order: deque[str] = field(default_factory=lambda: deque(maxlen=400))
    log: deque[str] = field(default_factory=lambda: deque(maxlen=6))
    links_down: set[str] = field(default_factory=set)
    told: int = 0

    def __post_init__(self) -> None:
        homes = {h.id: h for h in self.registry.homes}
        ws = {w.id: w for w in self.registry.workstations}
        self._where: dict[str, tuple[str, str, str, str]] = {}
        for g in self.registry.gateways:
            h = homes[g.home]
            self._where[g.id] = (h.id, h.address, ws[h.workstation].id, ws[h.workstation].name)

    # --- fleet hooks ---------------------------------------------------------------------
    def sent(self, gw: SimGateway, pend: Pending, resend: bool) -> None:
        if pend.event is None:
            return
        if pend.id in self.rows:
            row = self.rows[pend.id]
            row.sends += 1
            if row.status == "sent":
                row.status = "resending"
            return
        ev = pend.event
        home, address, ws_id, ws_name = self._where.get(gw.id, ("?", "?", "?", "?"))
        self.rows[pend.id] = Row(time.time(), gw.id, home, address, f"{ws_id} {ws_name}", ev.kind.value,
                                 ev.state.value, ev.alarm_class.value)  # fmt: skip
        self.order.append(pend.id)
        while len(self.rows) > self.order.maxlen:  # type: ignore[operator]
            self.rows.pop(next(iter(self.rows)))

    def stored(self, gw: SimGateway, ids: set[str]) -> None:
        for mid in ids:
            row = self.rows.get(mid)
            if row is not None and row.status in ("sent", "resending"):
                row.status = "stored"

    def home_told(self, gw: SimGateway, item: p.AckItem) -> None:
        row = self.rows.get(item.id)
        self.told += 1
        if row is not None:
            row.status = item.status.value
            row.by = item.by or ""
        if item.status == p.AckStatus.DISPATCHED:
            where = self._where.get(gw.id, ("?", "?", "?", "?"))
            self.log.append(
                f"{time.strftime('%H:%M:%S')} 🔊 {where[0]} ({where[1]}): “help is on the way” played at home"
            )

    def link(self, gw: SimGateway, up: bool) -> None:
        if up:
            if gw.id in self.links_down:
                self.links_down.discard(gw.id)
        else:
            self.links_down.add(gw.id)

    def visible(self) -> list[Row]:
        """Newest first, life-safety alarms before the rest."""
        ids = [i for i in reversed(self.order) if i in self.rows][: self.max_rows * 3]
        rows = [self.rows[i] for i in ids]
        rows.sort(key=lambda r: (r.cls != "alarm", -r.at))
        return rows[: self.max_rows]


def center_table(
    alarms: list[dict[str, Any]], details: dict[str, dict[str, Any]], status: str = "", rows: int = 12
) -> Table:
    """The hub's alarms: routed to which workstation, escalated how far, who acted."""
    table = Table(expand=True, header_style="bold", title=f"at the centers (hub API: {status})")
    for col in (
        "raised",
        "alarm",
        "home",
        "workstation",
        "notified",
        "escalated",
        "state",
        "responder",
        "acts",
    ):
        table.add_column(col, no_wrap=col != "acts")
    for a in alarms[:rows]:
        d = details.get(a["id"], {})
        # only what reached someone: a row of an unconfigured channel (no SMS provider in the
        # demo) or a dead-lettered one is not "notified"
        roles = [n["role"] for n in d.get("notifications", []) if n.get("status") == "delivered"]
        notified = ", ".join(dict.fromkeys(r for r in roles if r != "home")) or "-"
        history = d.get("history", [])
        escalations = sum(1 for h in history if h["action"] == "escalate")
        acts = ", ".join(f"{h['action']} by {h['actor'].split(' [')[0]}" for h in history
                         if h["action"] not in ("notify", "raise", "escalate"))  # fmt: skip
        style = CLASS_STYLE.get(a["alarm_class"], "")
        table.add_row(a["raised_at"][11:19], Text(a["kind"], style=style), a.get("home_id") or "-",
                      a.get("workstation_id") or "-", notified,
                      Text(f"escalated x{escalations}" if escalations else "-", style="bold magenta" if escalations else ""),
                      Text(a["state"], style=STATUS_STYLE.get(a["state"], "")), a.get("responder") or "",
                      acts[-70:])  # fmt: skip
    return table


def render(
    board: DemoBoard,
    header: str,
    counters: dict[str, int | str],
    center: tuple[list[dict[str, Any]], dict[str, dict[str, Any]], str] | None = None,
) -> Group:
    table = Table(expand=True, show_lines=False, header_style="bold", title="in the homes (gateways)")
    for col in ("time", "home", "address", "workstation", "event", "status", "by", "tx"):
        table.add_column(col, no_wrap=col not in ("address", "workstation"))
    for r in board.visible():
        event = Text(f"{r.kind} {r.state}", style=CLASS_STYLE.get(r.cls, "") if r.state == "alarm" else "dim")
        status = "help is on the way" if r.status == "dispatched" else r.status
        table.add_row(time.strftime("%H:%M:%S", time.localtime(r.at)), r.home, r.address, r.workstation, event,
                      Text(status, style=STATUS_STYLE.get(r.status, "")), r.by, str(r.sends))  # fmt: skip
    stats = "   ".join(f"[bold]{k}[/] {v}" for k, v in counters.items())
    return Group(
        Panel(Text.from_markup(header), title="safehome demo", border_style="blue"),
        Panel(Text.from_markup(stats), border_style="dim"),
        table,
        *([center_table(*center)] if center is not None else []),
        Panel("\n".join(board.log) or "(nothing yet)", title="at home", border_style="green"),
    )
