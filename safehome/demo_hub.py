"""The hub side of the demo. INTEGRATION POINT with hub/runner.py.

When ``hub.runner`` exists, the demo imports the registry into a SQLite database, starts
``safehome hub run`` against the demo broker and prints the API URL with one demo token per
role. Until then a stand-in acks every event (stored), so the gateways' resend-until-acked
loop closes, but nothing is routed, escalated or acknowledged.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from firmware_sim.standin import StandIn


@dataclass
class HubHandle:
    kind: str
    lines: list[str] = field(default_factory=list)
    standin: StandIn | None = None

    def describe(self) -> list[str]:
        return self.lines

    def stop(self) -> None:
        if self.standin is not None:
            self.standin.close()


def hub_available() -> bool:
    return importlib.util.find_spec("hub.runner") is not None


def start_hub(workdir: Path, host: str, port: int, registry: Path) -> HubHandle:
    if hub_available():  # pragma: no cover - wired once hub/runner.py is merged
        raise NotImplementedError("hub/runner.py exists: wire it here")
    return HubHandle(
        "stand-in",
        ["hub: [yellow]stand-in acker[/] (hub/runner.py not merged yet): events are stored, not routed"],
        StandIn(host, port),
    )
