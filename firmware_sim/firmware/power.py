"""The gateway's UPS HAT (``power-supervisor``): mains loss, brown-outs and the backup battery.

Pure, like the other firmware models: it only produces timed drives of the power-good
input (role ``mains``: 1.0 = mains lost), of the battery's ADC channel (role
``battery``: the battery voltage as a fraction of the divider's full scale) and of the
HAT's 5 V output to the gateway itself (role :data:`SUPPLY`: 1.0 = cut). The battery
voltage follows the open-circuit curve of a 1-cell Li-ion pack, sagging under the
gateway's load while it discharges and lifted by the charger while it recharges.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from firmware_sim.firmware.models import Drive

#: Open-circuit voltage of a 1-cell Li-ion (18650) pack by state of charge: a steep top,
#: a long plateau around 3.7-3.9 V, and the knee below 10 % where it falls fast.
LI_ION_OCV: tuple[tuple[float, float], ...] = (
    (0.00, 3.00), (0.05, 3.45), (0.10, 3.68), (0.20, 3.74), (0.30, 3.77), (0.40, 3.79),
    (0.50, 3.82), (0.60, 3.87), (0.70, 3.92), (0.80, 3.98), (0.90, 4.06), (1.00, 4.20),
)  # fmt: skip
_SOC = [s for s, _ in LI_ION_OCV]
#: Not an input but the HAT's output that powers the gateway: 1.0 = cut (the cell is empty;
#: the Pi goes dark), 0.0 = on (mains is back; the Pi boots). Only a simulated Pi
#: (:class:`firmware_sim.firmware.pi.SimulatedPi`) can act on it. Sorts after ``mains``,
#: so that at restore the power-good line is back before the gateway boots.
SUPPLY = "supply"
_OCV = [v for _, v in LI_ION_OCV]


def ocv(soc: float) -> float:
    """Open-circuit voltage at state of charge ``soc`` (clamped to 0..1)."""
    soc = min(1.0, max(0.0, soc))
    i = min(len(_SOC) - 1, max(1, bisect.bisect_left(_SOC, soc)))
    (s0, v0), (s1, v1) = LI_ION_OCV[i - 1], LI_ION_OCV[i]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


def soc_at(volts: float) -> float:
    """State of charge at open-circuit voltage ``volts`` (the inverse of :func:`ocv`)."""
    if not _OCV[0] <= volts <= _OCV[-1]:
        raise ValueError(f"{volts} V is outside the Li-ion cell's {_OCV[0]}..{_OCV[-1]} V")
    i = min(len(_OCV) - 1, max(1, bisect.bisect_left(_OCV, volts)))
    (s0, v0), (s1, v1) = LI_ION_OCV[i - 1], LI_ION_OCV[i]
    return s0 + (s1 - s0) * (volts - v0) / (v1 - v0)


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} {value} must be > 0")


@dataclass(frozen=True)
class UpsHat:
    """A UPS HAT with a 1-cell Li-ion backup, wired as the ``power-supervisor`` model."""

    sensor: str = "power-1"
    full_scale_v: float = 4.95  #: battery volts at ADC 1.0 (10 kΩ : 20 kΩ divider, Vref 3.3 V)
    backup_s: float = 4 * 3600.0  #: full to empty at the gateway's load (Pi + modem, ~3 W)
    recharge_s: float = 3 * 3600.0  #: empty to full on the charger
    sag_v: float = 0.08  #: terminal voltage below the open-circuit curve under load
    charge_rise_v: float = 0.10  #: above it while the charger pushes current in

    def battery_v(self, soc: float, mode: str = "rest") -> float:
        """Terminal voltage at ``soc`` while discharging, charging or at rest."""
        v = ocv(soc)
        if mode == "discharge":
            return v - self.sag_v
        if mode == "charge":
            return min(_OCV[-1], v + self.charge_rise_v)
        return v

    def _adc(self, t: float, volts: float, note: str = "") -> Drive:
        return Drive(t, self.sensor, "battery", round(volts / self.full_scale_v, 5), note or f"{volts:.2f} V")

    def _mains(self, t: float, lost: bool, note: str) -> Drive:
        return Drive(t, self.sensor, "mains", 1.0 if lost else 0.0, note)

    def _supply(self, t: float, on: bool, note: str) -> Drive:
        return Drive(t, self.sensor, SUPPLY, 0.0 if on else 1.0, note)

    def mains_loss(self, t0: float, duration: float, step: float = 60.0, soc: float = 1.0) -> list[Drive]:
        """Mains lost for ``duration`` s: the power-good line drops and the gateway runs on
        the battery, whose voltage slides down the discharge curve (a sample every
        ``step`` s); at restore the line comes back and the charger brings the battery back
        to full over the rest of ``recharge_s``.

        A battery that empties first (after ``soc * backup_s``) makes the HAT cut the
        gateway's supply (:data:`SUPPLY`), as a real one does to spare the cell: the Pi goes
        dark, the cell rests at its empty voltage, and the Pi boots when mains returns."""
        _positive(duration=duration, step=step)
        if not 0.0 <= soc <= 1.0:
            raise ValueError(f"soc {soc} outside 0..1")
        out = [self._mains(t0, True, "mains lost")]
        runtime = soc * self.backup_s  # on battery until the cell is empty
        cut = runtime < duration
        t = 0.0
        while t < min(duration, runtime) - 1e-9:
            out.append(self._adc(t0 + t, self.battery_v(soc - t / self.backup_s, "discharge")))
            t += step
        if cut:
            out.append(self._adc(t0 + runtime, self.battery_v(0.0), "battery empty"))
            out.append(self._supply(t0 + runtime, False, "battery empty: the HAT cuts the gateway's supply"))
        low = max(0.0, soc - duration / self.backup_s)
        back = t0 + duration
        out.append(self._mains(back, False, "mains restored"))
        if cut:
            out.append(self._supply(back, True, "mains restored: the gateway boots"))
        charging = (1.0 - low) * self.recharge_s
        t = 0.0
        while t < charging - 1e-9:
            out.append(self._adc(back + t, self.battery_v(low + t / self.recharge_s, "charge")))
            t += step
        out.append(self._adc(back + charging, self.battery_v(1.0), "battery charged"))
        return out

    def brownout(self, t0: float, width: float = 0.5) -> list[Drive]:
        """A brown-out the UPS rides through: power-good drops for ``width`` s. Shorter than
        the input's debounce (2 s by default), it must raise nothing."""
        _positive(width=width)
        return [self._mains(t0, True, "brown-out"), self._mains(t0 + width, False, "brown-out over")]

    def battery_drain(self, t0: float, from_v: float = 4.0, to_v: float = 3.4, over: float = 3600.0,
                      step: float = 60.0) -> list[Drive]:  # fmt: skip
        """The charger has failed (or the cell is ageing): the battery goes from ``from_v``
        to ``to_v`` over ``over`` s, along the cell's curve (slowly on the plateau, fast at
        the knee), mains still present. ``to_v > from_v`` models a recovery."""
        _positive(over=over, step=step)
        a, b = soc_at(from_v), soc_at(to_v)
        out: list[Drive] = []
        t = 0.0
        while t < over - 1e-9:
            out.append(self._adc(t0 + t, ocv(a + (b - a) * t / over)))
            t += step
        out.append(self._adc(t0 + over, to_v, f"{to_v:.2f} V: drain over"))
        return out
