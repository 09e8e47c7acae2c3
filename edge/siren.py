"""What the buzzer does at home: a pure policy (tested without pins) and a small driver.

* ``ALARM`` pattern (fast beeps) from the moment an alarm is recorded, until a person at
  the center acknowledges it (Ack status acknowledged / dispatched / on_site / resolved),
  the panic button cancels it, or the center silences the siren. After
  ``siren_timeout_s`` the siren stops — but never while the uplink is down, because then
  nobody at the center knows.
* ``HELP`` pattern (short double chirp every 2 s) for ``help_pattern_s`` when the hub says
  a person acknowledged or dispatched help; a voice prompt hook fires once ("help is on
  the way").
* ``TROUBLE`` pattern (one short chirp every 10 s, like a smoke detector's low battery)
  while the gateway itself is in trouble: its buffer (SD card) refuses writes, so a power
  cut would now lose what is not yet acked. The center's ``silence_siren`` silences it
  until the next time the buffer fails.
* Status LED: steady while linked, blinking (0.5 s) while the uplink is down, flickering
  (0.1 s) while the buffer fails.
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
    TROUBLE = "trouble"


#: (seconds, on) steps, repeated.
STEPS: dict[Pattern, tuple[tuple[float, bool], ...]] = {
    Pattern.OFF: ((1.0, False),),
    Pattern.ALARM: ((0.5, True), (0.5, False)),
    Pattern.HELP: ((0.1, True), (0.1, False), (0.1, True), (1.7, False)),
    Pattern.TROUBLE: ((0.1, True), (9.9, False)),
}
#: the driver looks at the policy (and drives the LED) at least this often
TICK_S = 0.1
HANDLED = frozenset({AckStatus.ACKNOWLEDGED, AckStatus.DISPATCHED, AckStatus.ON_SITE, AckStatus.RESOLVED})
HELP_ON_THE_WAY = frozenset({AckStatus.ACKNOWLEDGED, AckStatus.DISPATCHED})


@dataclass(slots=True)
class SirenPolicy:
    timeout_s: float = 600.0  #: 0 = sound until handled
    help_s: float = 60.0
    enabled: bool = True
    unhandled: dict[str, tuple[str, float]] = field(default_factory=dict)  #: event id -> (sensor, t)
    help_until: float = 0.0
    #: recent alarm event ids -> sensor: the hub may answer for any event of the same alarm
    sensor_of: dict[str, str] = field(default_factory=dict)
    trouble: bool = False  #: the gateway's own trouble (its buffer refuses writes)
    trouble_silenced: bool = False

    def set_trouble(self, on: bool) -> None:
        if on and not self.trouble:
            self.trouble_silenced = False  # a new failure sounds again
        self.trouble = on

    def alarm(self, event_id: str, sensor: str, now: float) -> None:
        self.unhandled[event_id] = (sensor, now)
        self.sensor_of[event_id] = sensor
        while len(self.sensor_of) > 256:
            del self.sensor_of[next(iter(self.sensor_of))]

    def cancel_sensor(self, sensor: str) -> None:
        """The panic button was long-pressed: its alarms no longer call for the siren."""
        for eid in [e for e, (s, _t) in self.unhandled.items() if s == sensor]:
            del self.unhandled[eid]

    def hub_status(self, event_id: str, status: AckStatus, now: float) -> bool:
        """Apply an Ack item. True when "help is on the way" starts now (voice prompt)."""
        if status not in HANDLED:
            return False
        known = event_id in self.sensor_of
        if known:
            # the hub folds repeated events of a sensor into one alarm: all of them are handled
            self.cancel_sensor(self.sensor_of[event_id])
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
        self.trouble_silenced = True

    def pattern(self, now: float, link_up: bool) -> Pattern:
        if not self.enabled:
            return Pattern.OFF
        for _sensor, t in self.unhandled.values():
            if not link_up or self.timeout_s == 0 or now - t < self.timeout_s:
                return Pattern.ALARM
        if now < self.help_until:
            return Pattern.HELP
        if self.trouble and not self.trouble_silenced:
            return Pattern.TROUBLE
        return Pattern.OFF


def led_on(now: float, link_up: bool, trouble: bool) -> bool:
    """Status LED: flicker while the buffer fails, blink while unlinked, else steady."""
    if trouble:
        return int(now / 0.1) % 2 == 0
    return link_up or int(now / 0.5) % 2 == 0


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


async def drive(
    policy: SirenPolicy, buzzer: Switch | None, led: Switch | None, link_up: asyncio.Event
) -> None:
    """Play the current pattern forever (each step for its full length; a new pattern
    starts within ``TICK_S``), and drive the status LED (:func:`led_on`)."""
    loop = asyncio.get_running_loop()
    step = 0
    current = Pattern.OFF
    step_end = 0.0
    lit: bool | None = None
    while True:
        now = loop.time()
        pattern = policy.pattern(now, link_up.is_set())
        if pattern is not current:
            current, step, step_end = pattern, 0, now
            log.info("siren pattern: %s", pattern)
        try:
            if now >= step_end:
                seconds, on = STEPS[current][step % len(STEPS[current])]
                step += 1
                step_end = now + seconds
                if buzzer is not None:
                    buzzer.set(on)
            led_state = led_on(now, link_up.is_set(), policy.trouble)
            if led is not None and led_state is not lit:
                led.set(led_state)
                lit = led_state
        except (GPIOZeroError, OSError) as exc:
            log.error("siren/LED output failed: %s", exc)
        await asyncio.sleep(max(0.0, min(step_end - now, TICK_S)))
