"""What the buzzer does at home: a pure policy (tested without pins) and a small driver.

* ``ALARM`` pattern (fast beeps) from the moment an alarm is recorded, until a person at
  the center acknowledges it (Ack status acknowledged / dispatched / on_site / resolved),
  the panic button cancels it, or the center silences the siren. After
  ``siren_timeout_s`` the siren stops — but never while the uplink is down, because then
  nobody at the center knows.
* ``HELP`` pattern (short double chirp every 2 s) for ``help_pattern_s`` when the hub says
  a person acknowledged or dispatched help; a voice prompt hook fires once ("help is on
  the way").
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field
from typing import Protocol

from gpiozero import GPIOZeroError

from protocols import AckStatus

log = logging.getLogger(__name__)


class Pattern(enum.StrEnum):
    OFF = "off"
    ALARM = "alarm"
    HELP = "help"


#: (seconds, on) steps, repeated.
STEPS: dict[Pattern, tuple[tuple[float, bool], ...]] = {
    Pattern.OFF: ((1.0, False),),
    Pattern.ALARM: ((0.5, True), (0.5, False)),
    Pattern.HELP: ((0.1, True), (0.1, False), (0.1, True), (1.7, False)),
}
HANDLED = frozenset({AckStatus.ACKNOWLEDGED, AckStatus.DISPATCHED, AckStatus.ON_SITE, AckStatus.RESOLVED})
HELP_ON_THE_WAY = frozenset({AckStatus.ACKNOWLEDGED, AckStatus.DISPATCHED})


@dataclass(slots=True)
class SirenPolicy:
    timeout_s: float = 600.0  #: 0 = sound until handled
    help_s: float = 60.0
    enabled: bool = True
    unhandled: dict[str, tuple[str, float]] = field(default_factory=dict)  #: event id -> (sensor, t)
    help_until: float = 0.0

    def alarm(self, event_id: str, sensor: str, now: float) -> None:
        self.unhandled[event_id] = (sensor, now)

    def cancel_sensor(self, sensor: str) -> None:
        """The panic button was long-pressed: its alarms no longer call for the siren."""
        for eid in [e for e, (s, _t) in self.unhandled.items() if s == sensor]:
            del self.unhandled[eid]

    def hub_status(self, event_id: str, status: AckStatus, now: float) -> bool:
        """Apply an Ack item. True when "help is on the way" starts now (voice prompt)."""
        if status not in HANDLED:
            return False
        known = self.unhandled.pop(event_id, None) is not None
        if status in HELP_ON_THE_WAY and (known or self.help_until > now):
            started = self.help_until <= now
            self.help_until = now + self.help_s
            return started
        if status in (AckStatus.ON_SITE, AckStatus.RESOLVED):
            self.help_until = 0.0
        return False

    def silence(self) -> None:
        self.unhandled.clear()
        self.help_until = 0.0

    def pattern(self, now: float, link_up: bool) -> Pattern:
        if not self.enabled:
            return Pattern.OFF
        for _sensor, t in self.unhandled.values():
            if not link_up or self.timeout_s == 0 or now - t < self.timeout_s:
                return Pattern.ALARM
        if now < self.help_until:
            return Pattern.HELP
        return Pattern.OFF


class Switch(Protocol):
    def set(self, on: bool) -> None: ...


class VoicePrompt(Protocol):
    async def say(self, prompt: str) -> None: ...


class CommandVoicePrompt:
    """Runs ``argv + [prompt]`` (e.g. an aplay wrapper); errors are logged, never raised."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.played: list[str] = []

    async def say(self, prompt: str) -> None:
        self.played.append(prompt)
        if not self.argv:
            log.info("voice prompt %r (no player configured)", prompt)
            return
        try:
            proc = await asyncio.create_subprocess_exec(*self.argv, prompt)
            await asyncio.wait_for(proc.wait(), timeout=30)
        except (OSError, TimeoutError) as exc:
            log.warning("voice prompt %r failed: %s", prompt, exc)


async def drive(policy: SirenPolicy, buzzer: Switch | None, led: Switch | None,
                link_up: asyncio.Event) -> None:
    """Play the current pattern forever; the LED is on while linked, blinks while not."""
    loop = asyncio.get_running_loop()
    step = 0
    current = Pattern.OFF
    while True:
        now = loop.time()
        pattern = policy.pattern(now, link_up.is_set())
        if pattern is not current:
            current, step = pattern, 0
            log.info("siren pattern: %s", pattern)
        seconds, on = STEPS[current][step % len(STEPS[current])]
        step += 1
        try:
            if buzzer is not None:
                buzzer.set(on)
            if led is not None:
                led.set(link_up.is_set() or (step % 2 == 0))
        except (GPIOZeroError, OSError) as exc:
            log.error("siren/LED output failed: %s", exc)
        await asyncio.sleep(min(seconds, 0.5))
