"""The demo's people at the centers: a scripted responder that works alarms through the API.

Most workstations acknowledge within seconds and dispatch someone; one workstation is a
*slow responder* that never answers, so the alarm escalates to its subdistrict center,
whose supervisor acknowledges later. :func:`next_step` is the pure policy; :class:`Responder`
polls ``/api/v1/alarms`` and POSTs the steps with each region's own token.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    ack_s: float = 8.0
    dispatch_s: float = 15.0
    arrive_s: float = 45.0
    resolve_s: float = 70.0
    slow_ack_s: float = 80.0  #: when the subdistrict center takes over a slow workstation's alarm


@dataclass(frozen=True)
class Step:
    action: str
    region: str  #: "workstation" or "subdistrict": whose token acts
    body: dict[str, Any]


OUTCOME = {"smoke": "cooking_smoke", "gas": "real_gas_leak", "panic": "resident_fine"}


def next_step(alarm: dict[str, Any], now: dt.datetime, slow: set[str], t: Timing = Timing()) -> Step | None:
    """What the responsible people do next with ``alarm`` (an AlarmPublic as JSON), if anything yet."""
    age = (now - dt.datetime.fromisoformat(alarm["raised_at"])).total_seconds()
    state, life = alarm["state"], alarm["alarm_class"] == "alarm"
    is_slow = alarm.get("workstation_id") in slow
    who = "subdistrict" if is_slow else "workstation"
    if state in ("raised", "notified"):
        due = t.slow_ack_s if is_slow else t.ack_s
        return Step("acknowledge", who, {"note": "demo responder"}) if age >= due else None
    if state == "acknowledged":
        if not life:
            return (
                Step(
                    "resolve", who, {"outcome": "device_fault" if alarm["kind"] != "mains_lost" else "other"}
                )
                if age >= t.resolve_s
                else None
            )
        if age >= t.dispatch_s + (t.slow_ack_s if is_slow else 0):
            return Step("dispatch", who, {"responder": "volunteer (demo)"})
        return None
    if state == "dispatched" and age >= t.arrive_s + (t.slow_ack_s if is_slow else 0):
        return Step("arrive", who, {})
    if state == "on_site" and age >= t.resolve_s + (t.slow_ack_s if is_slow else 0):
        return Step("resolve", who, {"outcome": OUTCOME.get(alarm["kind"], "other")})
    return None


@dataclass
class Responder:
    api_url: str
    tokens: dict[str, str]  #: "workstation:ws-0001" / "subdistrict:sd-01" / "district:…" → token
    watch_token: str  #: a district-wide token to list alarms
    slow: set[str]
    timing: Timing = Timing()
    alarms: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: int = 0
    status: str = "starting"  #: shown in the view; errors go here, not to the terminal
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5.0))

    async def poll(self) -> None:
        """One round: refresh the open alarms, take the due steps, fetch details for the view."""
        try:
            r = await self.client.get(f"{self.api_url}/alarms", params={"limit": 200},
                                      headers={"Authorization": f"Bearer {self.watch_token}"})  # fmt: skip
            if r.status_code == 404:
                self.status = "alarm API not mounted in this hub build (GET /api/v1/alarms: 404)"
                return
            r.raise_for_status()
            self.alarms = r.json()["items"]
            self.status = f"{len(self.alarms)} alarms listed"
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self.errors += 1
            self.status = f"listing alarms failed: {exc!r}"[:200]
            log.debug("demo responder: listing alarms failed: %s", exc)
            return
        now = dt.datetime.now(dt.UTC)
        for a in self.alarms:
            step = next_step(a, now, self.slow, self.timing)
            if step is None:
                continue
            region = f"{step.region}:{a['workstation_id'] if step.region == 'workstation' else a['subdistrict_id']}"
            token = self.tokens.get(region)
            if token is None:
                continue
            try:
                await self.client.post(
                    f"{self.api_url}/alarms/{a['id']}/{step.action}", json=step.body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"demo-{a['id']}-{step.action}"},
                )  # fmt: skip
            except httpx.HTTPError as exc:
                self.errors += 1
                self.status = f"{step.action} {a['id']} failed: {exc!r}"[:200]
        for a in self.alarms[:15]:
            try:
                r = await self.client.get(f"{self.api_url}/alarms/{a['id']}",
                                          headers={"Authorization": f"Bearer {self.watch_token}"})  # fmt: skip
                if r.status_code == 200:
                    self.details[a["id"]] = r.json()
            except httpx.HTTPError:
                self.errors += 1

    async def close(self) -> None:
        await self.client.aclose()
