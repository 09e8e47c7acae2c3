"""What became of the config revision the hub delivers, as the gateway last reported it in
its status (``config_revision`` applied, ``config_error`` refused; protocol 1.1). Pure: the
caller passes the stored ``last_status`` of the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

State = Literal["applied", "refused", "pending"]


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    revision: int  #: the revision the answer is about (the hub's, while pending)
    running: int | None  #: the revision the gateway runs
    reason: str = ""
    detail: str = ""

    @property
    def text(self) -> str:
        if self.state == "applied":
            return f"applied revision {self.revision}"
        if self.state == "refused":
            return f"refused revision {self.revision}: {self.reason}" + (f" ({self.detail})" if self.detail else "") + (
                f"; still running revision {self.running}" if self.running is not None else "")
        runs = f"; the gateway runs revision {self.running}" if self.running is not None else ""
        return f"revision {self.revision} not confirmed by the gateway yet{runs}"

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "revision": self.revision, "running": self.running,
                "reason": self.reason, "detail": self.detail, "text": self.text}


def outcome(status: Mapping[str, Any] | None, revision: int) -> Outcome:
    """The gateway's answer to ``revision`` (or to a newer one) in its last status."""
    status = status or {}
    running = status.get("config_revision")
    running = running if isinstance(running, int) else None
    err = status.get("config_error")
    if isinstance(err, Mapping) and isinstance(err.get("revision"), int) and err["revision"] >= revision and (
        running is None or err["revision"] > running
    ):
        return Outcome("refused", err["revision"], running, str(err.get("reason", "")), str(err.get("detail", "")))
    if running is not None and running >= revision:
        return Outcome("applied", running, running)
    return Outcome("pending", revision, running)
