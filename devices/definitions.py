"""The supported device models. Adding a model is adding a definition here (and nothing else).

Pin numbers are BCM defaults for the safehome HAT wiring; an installation may override
them per sensor (``pin``, ``channel`` … in the sensor's ``params``).
"""

from __future__ import annotations

from devices.capabilities import (
    Definition,
    alarm_contact,
    analog_level,
    battery,
    button,
    mains_input,
    siren,
    status_led,
    tamper,
)

SMOKE_DRY_CONTACT = Definition(
    model="smoke-dry-contact",
    vendor="generic",
    description="Mains smoke detector with a relay / dry-contact alarm output (NO or NC)",
    capabilities=(alarm_contact("smoke", pin=17, debounce_ms=300),),
)

SMOKE_RELAY_SUPERVISED = Definition(
    model="smoke-relay-supervised",
    vendor="generic",
    description=(
        "4-wire smoke detector, supervised: alarm relay (NO, closes on smoke, GPIO 5), "
        "trouble relay (NO, closes while the battery is low or the detector faults: "
        "battery_low, GPIO 6) and a base tamper switch (NC loop to ground, opens when the "
        "detector is taken off its base: tamper, GPIO 13)"
    ),
    capabilities=(
        alarm_contact("smoke", pin=5, debounce_ms=300),
        alarm_contact("battery_low", pin=6, role="trouble", debounce_ms=500),
        tamper(pin=13, role="tamper", debounce_ms=200),
    ),
)

POWER_SUPERVISOR = Definition(
    model="power-supervisor",
    vendor="generic",
    description=(
        "Gateway UPS HAT (1-cell Li-ion backup): power-good output on GPIO 25 (high while "
        "mains is present; pulled down, so a cut wire reads as mains lost; 2 s debounce "
        "rides through brown-outs) and the backup battery voltage on MCP3008 channel 1 "
        "through a 10 kΩ : 20 kΩ divider (4.95 V at full scale): battery_low below 3.6 V, "
        "restored above 3.8 V"
    ),
    capabilities=(
        mains_input(pin=25, debounce_ms=2000),
        battery(channel=1, full_scale=4.95, low_v=3.6, hysteresis=0.2, full_v=4.2),
    ),
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

PANIC_BUTTON_TAMPER = Definition(
    model="panic-button-tamper",
    vendor="generic",
    description=(
        "Wall-mounted one-button alarm with a lid tamper switch: the button as "
        "``panic-button`` (GPIO 22), plus an NC tamper loop that opens when the cover is "
        "removed (tamper, GPIO 16)"
    ),
    capabilities=(
        button("panic", pin=22, long_press_cancel_s=3.0, debounce_ms=50),
        tamper(pin=16, role="tamper"),
    ),
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

ALL: tuple[Definition, ...] = (
    SMOKE_DRY_CONTACT,
    SMOKE_RELAY_SUPERVISED,
    GAS_DETECTOR,
    PANIC_BUTTON,
    PANIC_BUTTON_TAMPER,
    POWER_SUPERVISOR,
    BUZZER,
    STATUS_LED,
)
