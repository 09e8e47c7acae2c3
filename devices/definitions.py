"""The supported device models. Adding a model is adding a definition here (and nothing else).

Pin numbers are BCM defaults for the safehome HAT wiring; an installation may override
them per sensor (``pin``, ``channel`` … in the sensor's ``params``).
"""

from __future__ import annotations

from devices.capabilities import (
    Definition,
    alarm_contact,
    analog_level,
    button,
    siren,
    status_led,
)

SMOKE_DRY_CONTACT = Definition(
    model="smoke-dry-contact",
    vendor="generic",
    description="Mains smoke detector with a relay / dry-contact alarm output (NO or NC)",
    capabilities=(alarm_contact("smoke", pin=17, debounce_ms=300),),
)

GAS_DETECTOR = Definition(
    model="gas-detector",
    vendor="generic",
    description=(
        "Domestic gas detector: relay alarm output, plus an optional analogue %LEL output "
        "through an MCP3008 ADC on SPI0 (warn at 10 %LEL, alarm at 20 %LEL, 3 %LEL hysteresis)"
    ),
    capabilities=(
        alarm_contact("gas", pin=27, debounce_ms=300),
        analog_level("gas", "%LEL", "gas_lel", channel=0, thresholds=(10.0, 20.0), hysteresis=3.0),
    ),
)

PANIC_BUTTON = Definition(
    model="panic-button",
    vendor="generic",
    description=(
        "Wired one-button alarm (pendant or wall button): a press raises a panic alarm; "
        "a later press held 3 s cancels it (a restore is sent, the alarm is never deleted)"
    ),
    capabilities=(button("panic", pin=22, long_press_cancel_s=3.0, debounce_ms=50),),
)

BUZZER = Definition(
    model="buzzer",
    vendor="generic",
    description="Piezo buzzer / sounder driven through a transistor (active high)",
    capabilities=(siren(pin=18),),
)

STATUS_LED = Definition(
    model="status-led",
    vendor="generic",
    description="Status LED: on = link up, blinking = uplink down",
    capabilities=(status_led(pin=23),),
)

ALL: tuple[Definition, ...] = (SMOKE_DRY_CONTACT, GAS_DETECTOR, PANIC_BUTTON, BUZZER, STATUS_LED)
