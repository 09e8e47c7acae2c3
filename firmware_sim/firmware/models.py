"""What the devices in a home do to their outputs over time. Pure: lists of timed drives.

A :class:`Drive` sets one input of the gateway at time ``t`` (s): a digital input role of
a sensor to *active* (contact closed / button pressed) or idle, or an ADC channel to a
fraction of full scale. The edge agent's own code (debounce, long-press cancel,
hysteresis) then decides what is an event — the simulator never fakes events here.

Models follow the shared device ids: ``smoke-dry-contact`` (relay closes on smoke),
``smoke-relay-supervised`` (alarm relay, trouble relay, base tamper loop), ``gas-detector``
(relay + analogue %LEL through an MCP3008), ``panic-button``; the gateway's UPS HAT
(``power-supervisor``) is in :mod:`firmware_sim.firmware.power`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Drive:
    t: float
    sensor: str
    role: str  #: input role: "contact", "button", "tamper", "mains"…; ADC: "level", "battery"
    value: float  #: digital: 1.0 active / 0.0 idle; ADC: fraction of full scale 0..1
    note: str = ""


@dataclass(frozen=True)
class SmokeDetector:
    """A mains smoke detector with a relay (dry contact) alarm output."""

    sensor: str = "smoke-1"
    selftest_s: float = 4.0  #: the relay closes while the test button sounds the horn

    def _contact(self, t: float, on: bool, note: str = "") -> Drive:
        return Drive(t, self.sensor, "contact", 1.0 if on else 0.0, note)

    def alarm(self, t0: float, duration: float) -> list[Drive]:
        """Smoke in the chamber for ``duration`` s: relay closed, then open."""
        return [self._contact(t0, True, "smoke"), self._contact(t0 + duration, False, "smoke cleared")]

    def selftest(self, t0: float) -> list[Drive]:
        """The resident (or installer) holds the test button: a short, real relay closure."""
        return [
            self._contact(t0, True, "self-test"),
            self._contact(t0 + self.selftest_s, False, "self-test over"),
        ]

    def cooking(self, t0: float, rng: random.Random, seconds: float | None = None) -> list[Drive]:
        """Cooking smoke: a relay that chatters a few times (below the debounce) and then
        stays closed for 30 to 120 s, until the kitchen is aired."""
        out = [self._contact(t0 + i * 0.05, i % 2 == 0, "relay chatter") for i in range(6)]
        hold = seconds if seconds is not None else rng.uniform(30, 120)
        start = t0 + 0.3
        return [
            *out,
            self._contact(start, True, "cooking smoke"),
            self._contact(start + hold, False, "aired"),
        ]

    def glitch(self, t0: float, width_s: float = 0.05) -> list[Drive]:
        """EMI on a long cable: a pulse shorter than the debounce; must not raise anything."""
        return [self._contact(t0, True, "glitch"), self._contact(t0 + width_s, False)]

    def low_battery_chirp(self, t0: float) -> list[Drive]:
        """The backup battery is low: the detector chirps every 40 s, but a dry-contact model
        has no output for it, so the gateway cannot see it (documented limit; the
        supervised model's trouble relay shows it: :class:`SupervisedSmokeDetector`)."""
        return []


@dataclass(frozen=True)
class SupervisedSmokeDetector(SmokeDetector):
    """A 4-wire smoke detector with a trouble relay and a base tamper switch
    (``smoke-relay-supervised``): unlike the dry-contact model, the gateway sees its
    low battery and its removal from the base."""

    sensor: str = "smoke-2"

    def low_battery_chirp(self, t0: float) -> list[Drive]:
        """The battery is low: the detector chirps every 40 s and closes its trouble relay,
        which stays closed until the battery is replaced."""
        return [Drive(t0, self.sensor, "trouble", 1.0, "low battery: trouble relay closed")]

    def battery_replaced(self, t0: float) -> list[Drive]:
        return [Drive(t0, self.sensor, "trouble", 0.0, "battery replaced: trouble relay open")]

    def tamper(self, t0: float, duration: float | None = None) -> list[Drive]:
        """The detector is twisted off its base (the NC loop opens) and, after ``duration``
        s, refitted; ``None``: left off."""
        out = [Drive(t0, self.sensor, "tamper", 1.0, "taken off its base")]
        if duration is not None:
            if duration <= 0:
                raise ValueError(f"tamper duration {duration} s must be > 0")
            out.append(Drive(t0 + duration, self.sensor, "tamper", 0.0, "refitted"))
        return out


@dataclass(frozen=True)
class GasDetector:
    """Domestic gas detector: analogue %LEL (MCP3008 channel) plus its own alarm relay."""

    sensor: str = "gas-1"
    full_scale: float = 100.0  #: %LEL at ADC full scale
    relay_on_lel: float = 20.0  #: the detector's own relay threshold
    relay_off_lel: float = 15.0

    def curve(self, peak: float, ramp: float, hold: float, vent: float, t: float) -> float:
        """%LEL at ``t`` s after the leak starts: linear rise, plateau, ventilation decay."""
        if t < 0:
            return 0.0
        if t <= ramp:
            return peak * (t / ramp if ramp else 1.0)
        if t <= ramp + hold:
            return peak
        return max(0.0, peak * (1 - (t - ramp - hold) / vent)) if vent else 0.0

    def leak(self, t0: float, peak: float = 40.0, ramp: float = 300.0, hold: float = 120.0,
             vent: float = 180.0, step: float = 5.0) -> list[Drive]:  # fmt: skip
        """A leak that builds up, stays, and is ventilated; the relay follows its thresholds."""
        out: list[Drive] = []
        relay = False
        t = 0.0
        while t <= ramp + hold + vent + 1e-9:
            lel = round(self.curve(peak, ramp, hold, vent, t), 2)
            out.append(Drive(t0 + t, self.sensor, "level", min(1.0, lel / self.full_scale), f"{lel} %LEL"))
            if not relay and lel >= self.relay_on_lel:
                relay = True
                out.append(Drive(t0 + t, self.sensor, "contact", 1.0, "gas relay"))
            elif relay and lel <= self.relay_off_lel:
                relay = False
                out.append(Drive(t0 + t, self.sensor, "contact", 0.0, "gas relay released"))
            t += step
        return out


@dataclass(frozen=True)
class PanicButton:
    """The wired one-button alarm by the bed or on a pendant."""

    sensor: str = "panic-1"
    long_press_s: float = 3.0

    def _b(self, t: float, down: bool, note: str = "") -> Drive:
        return Drive(t, self.sensor, "button", 1.0 if down else 0.0, note)

    def press(self, t0: float, hold: float = 0.4) -> list[Drive]:
        return [self._b(t0, True, "press"), self._b(t0 + hold, False)]

    def long_press_cancel(self, t0: float, after: float = 5.0) -> list[Drive]:
        """A press, then — ``after`` s later — a press held past the long-press time: cancel."""
        return [*self.press(t0), self._b(t0 + after, True, "long press"),
                self._b(t0 + after + self.long_press_s + 0.5, False)]  # fmt: skip

    def double_press(self, t0: float, gap: float = 0.6) -> list[Drive]:
        """An accidental double press: two short presses close together."""
        return [*self.press(t0, 0.2), *self.press(t0 + 0.2 + gap, 0.2)]
