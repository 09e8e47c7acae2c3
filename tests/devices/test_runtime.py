"""Definitions bound to gpiozero MockFactory pins and a settable ADC source."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from devices import registry
from devices.analog import SettableSource
from devices.errors import DefinitionError, PinFactoryError
from devices.pins import make_pin_factory
from devices.runtime import OutputRuntime, SensorRuntime


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = make_pin_factory("mock")
    assert isinstance(f, MockFactory)
    yield f
    f.reset()  # MockFactory pins are shared by all instances: leave none driven
    f.close()


def test_hardware_factories_fail_clearly_off_a_pi() -> None:
    with pytest.raises(PinFactoryError, match="unknown pin factory 'gpio9'"):
        make_pin_factory("gpio9")


def test_smoke_contact_driven_low_raises_and_restores(factory: MockFactory) -> None:
    s = SensorRuntime("smoke-1", registry.get("smoke-dry-contact"), factory)
    pin = factory.pin(s.pins["contact"])
    assert s.poll(0.0) == []
    pin.drive_low()
    assert s.poll(1.0) == []  # debounce starts
    [ch] = s.poll(1.3)
    assert (ch.sensor, ch.kind, ch.alarm) == ("smoke-1", "smoke", True)
    assert s.readings() == {"smoke_contact": 1.0}
    pin.drive_high()
    s.poll(2.0)
    [ch] = s.poll(2.5)
    assert ch.alarm is False
    s.close()


def test_pin_override_and_bad_params(factory: MockFactory) -> None:
    s = SensorRuntime("smoke-2", registry.get("smoke-dry-contact"), factory, {"contact_pin": 5})
    assert s.pins == {"contact": 5}
    s.close()
    with pytest.raises(DefinitionError, match="unknown param 'pin'"):
        SensorRuntime("smoke-3", registry.get("smoke-dry-contact"), factory, {"pin": 5})
    with pytest.raises(DefinitionError, match="must be int"):
        SensorRuntime("smoke-3", registry.get("smoke-dry-contact"), factory, {"contact_pin": "5"})


def test_gas_contact_or_level_raise_one_alarm(factory: MockFactory) -> None:
    src = SettableSource()
    g = SensorRuntime("gas-1", registry.get("gas-detector"), factory, analog=lambda cap: src)
    assert g.poll(0.0) == []
    src.set_fraction(0.25)  # 25 %LEL >= alarm threshold 20
    [ch] = g.poll(0.1)
    assert (ch.kind, ch.alarm, ch.values["lel"]) == ("gas", True, 25.0)
    factory.pin(g.pins["contact"]).drive_low()
    g.poll(0.2)
    assert g.poll(0.6) == []  # already in alarm: no second alarm
    src.set_fraction(0.18)  # within hysteresis
    factory.pin(g.pins["contact"]).drive_high()
    g.poll(0.7)
    assert g.poll(1.1) == []  # level still at alarm
    src.set_fraction(0.05)
    [ch] = g.poll(1.2)
    assert (ch.kind, ch.alarm) == ("gas", False)
    assert g.readings()["gas_lel"] == 5.0
    g.close()


def test_adc_read_failures_raise_a_sensor_fault(factory: MockFactory) -> None:
    src = SettableSource()
    g = SensorRuntime("gas-2", registry.get("gas-detector"), factory, analog=lambda cap: src)
    src.fail = "spi timeout"
    out = [c for t in range(5) for c in g.poll(t * 0.1)]
    assert [(c.kind, c.alarm) for c in out] == [("sensor_fault", True)]
    src.fail = None
    assert [(c.kind, c.alarm) for c in g.poll(1.0)] == [("sensor_fault", False)]
    g.close()


def test_gas_without_adc(factory: MockFactory) -> None:
    g = SensorRuntime("gas-3", registry.get("gas-detector"), factory, {"level_enabled": False})
    assert g.poll(0.0) == []
    assert "gas_lel" not in g.readings()
    g.close()


def test_panic_press_and_long_press_cancel(factory: MockFactory) -> None:
    p = SensorRuntime("panic-1", registry.get("panic-button"), factory)
    pin = factory.pin(p.pins["button"])
    pin.drive_low()
    p.poll(0.0)
    [ch] = p.poll(0.06)
    assert (ch.kind, ch.alarm, ch.cause) == ("panic", True, "press")
    pin.drive_high()
    p.poll(1.0)
    p.poll(1.1)
    pin.drive_low()
    p.poll(2.0)
    p.poll(2.1)
    assert p.poll(4.0) == []
    [ch] = p.poll(5.2)
    assert (ch.kind, ch.alarm, ch.cause) == ("panic", False, "cancel")
    p.close()


def test_outputs(factory: MockFactory) -> None:
    b = OutputRuntime("buzzer", registry.get("buzzer"), factory)
    led = OutputRuntime("led", registry.get("status-led"), factory, {"led_pin": 24})
    b.set(True)
    assert b.is_on and factory.pin(18).state
    b.set(False)
    assert not factory.pin(18).state
    led.set(True)
    assert factory.pin(24).state
    with pytest.raises(DefinitionError, match="not a single output"):
        OutputRuntime("x", registry.get("smoke-dry-contact"), factory)
    b.close()
    led.close()


def test_supervised_smoke_trouble_relay_and_base_tamper(factory: MockFactory) -> None:
    s = SensorRuntime("smoke-2", registry.get("smoke-relay-supervised"), factory)
    assert s.pins == {"contact": 5, "trouble": 6, "tamper": 13}
    tamper, trouble = factory.pin(13), factory.pin(6)
    tamper.drive_low()  # the NC base loop is closed: detector on its base
    assert s.poll(0.0) == []
    trouble.drive_low()  # the trouble relay closes: battery low
    assert s.poll(0.1) == []
    [ch] = s.poll(0.7)
    assert (ch.sensor, ch.kind, ch.alarm, ch.cause) == ("smoke-2", "battery_low", True, "trouble")
    tamper.drive_high()  # taken off the base: the loop opens, the pull-up wins
    s.poll(1.0)
    [ch] = s.poll(1.25)
    assert (ch.kind, ch.alarm) == ("tamper", True)
    assert s.readings() == {"smoke_contact": 0.0, "battery_low_contact": 1.0, "tamper_contact": 1.0}
    tamper.drive_low()
    trouble.drive_high()  # battery replaced
    s.poll(2.0)
    assert sorted((c.kind, c.alarm) for c in s.poll(2.6)) == [("battery_low", False), ("tamper", False)]
    s.close()


def test_nc_and_power_good_inputs_keep_their_pull_so_a_cut_wire_is_a_trouble(factory: MockFactory) -> None:
    """An undriven (cut) tamper loop reads open, an undriven power-good line reads mains lost."""
    s = SensorRuntime("smoke-2", registry.get("smoke-relay-supervised"), factory)
    u = SensorRuntime(
        "ups-1", registry.get("power-supervisor"), factory, analog=lambda cap: SettableSource(0.85)
    )
    assert (factory.pin(13).pull, factory.pin(25).pull) == ("up", "down")
    s.poll(0.0)
    u.poll(0.0)
    assert [(c.kind, c.alarm) for c in s.poll(0.3)] == [("tamper", True)]
    assert [(c.kind, c.alarm) for c in u.poll(2.1)] == [("mains_lost", True)]
    s.close()
    u.close()


def test_mains_lost_is_debounced_so_a_brownout_flicker_raises_nothing(factory: MockFactory) -> None:
    u = SensorRuntime(
        "ups-1", registry.get("power-supervisor"), factory, analog=lambda cap: SettableSource(0.85)
    )
    pg = factory.pin(u.pins["mains"])
    pg.drive_high()  # power good
    assert u.poll(0.0) == []
    pg.drive_low()  # a 1.5 s brown-out: shorter than the 2 s debounce
    assert u.poll(0.1) == [] and u.poll(1.5) == []
    pg.drive_high()
    assert u.poll(1.6) == [] and u.poll(5.0) == []
    pg.drive_low()  # a real outage
    u.poll(6.0)
    [ch] = u.poll(8.0)
    assert (ch.sensor, ch.kind, ch.alarm, ch.cause) == ("ups-1", "mains_lost", True, "mains")
    pg.drive_high()
    u.poll(9.0)
    [ch] = u.poll(11.0)
    assert (ch.kind, ch.alarm) == ("mains_lost", False)
    u.close()


def test_backup_battery_voltage_low_with_hysteresis_and_telemetry(factory: MockFactory) -> None:
    src = SettableSource()
    u = SensorRuntime("ups-1", registry.get("power-supervisor"), factory, analog=lambda cap: src)
    factory.pin(u.pins["mains"]).drive_high()
    assert u.channels == {"battery": 1}

    def volts(v: float) -> list[tuple[str, bool, float]]:
        src.set_fraction(v / 4.95)  # the divider: 4.95 V at ADC full scale
        return [(c.kind, c.alarm, c.values["battery_v"]) for c in u.poll(0.0)]

    assert volts(4.1) == []
    assert u.readings()["battery_v"] == 4.1
    assert volts(3.55) == [("battery_low", True, 3.55)]
    assert volts(3.75) == []  # recovering, but not above 3.6 + 0.2
    assert volts(3.5) == []  # already low: raised once
    assert volts(3.85) == [("battery_low", False, 3.85)]
    assert volts(3.7) == []  # a sag inside the band is not a new battery_low
    assert u.readings() == {"battery_v": 3.7, "mains_lost_contact": 0.0}
    u.close()


def test_battery_adc_read_failures_raise_a_sensor_fault(factory: MockFactory) -> None:
    src = SettableSource(0.85)
    u = SensorRuntime("ups-2", registry.get("power-supervisor"), factory, analog=lambda cap: src)
    src.fail = "spi timeout"
    out = [c for t in range(5) for c in u.poll(t * 0.1)]
    assert [(c.kind, c.alarm, c.cause) for c in out] == [("sensor_fault", True, "battery")]
    assert u.faulted and not u.check()
    src.fail = None
    assert [(c.kind, c.alarm) for c in u.poll(1.0)] == [("sensor_fault", False)]
    u.close()


@pytest.mark.parametrize(
    ("model", "params", "match"),
    [
        ("power-supervisor", {"battery_low_v": -1}, r"sensor 'x-1': .*'battery': low_v -1 V must be > 0"),
        ("power-supervisor", {"battery_channel": 9}, "MCP3008 channel 9 outside 0..7"),
        (
            "power-supervisor",
            {"battery_low_v": 4.1},
            r"low_v \+ hysteresis \(4.1 \+ 0.2 V\) < full_v \(4.2 V\)",
        ),
        ("power-supervisor", {"battery_full_v": 6.0}, r"<= full_scale \(4.95 V\)"),
        ("power-supervisor", {"battery_hysteresis": -0.1}, "hysteresis -0.1 V must be >= 0"),
        ("power-supervisor", {"battery_low_v": "3.5"}, "'battery_low_v' must be float, got str"),
        ("power-supervisor", {"mains_debounce_ms": 20_000}, "'mains': debounce_ms 20000 outside 0..10000"),
        ("power-supervisor", {"battery_pin": 5}, "unknown param 'battery_pin'"),
        ("smoke-relay-supervised", {"tamper_pin": 5}, r"uses a pin twice: \[5, 6, 5\]"),
        ("smoke-relay-supervised", {"trouble_pin": 40}, "'trouble': pin 40 is not a BCM GPIO"),
    ],
)
def test_bad_power_and_supervision_params_are_named(
    factory: MockFactory, model: str, params: dict[str, object], match: str
) -> None:
    with pytest.raises(DefinitionError, match=match):
        SensorRuntime("x-1", registry.get(model), factory, params, analog=lambda cap: SettableSource())  # type: ignore[arg-type]


def test_overrides_keep_working_and_pins_clash_across_sensors(factory: MockFactory) -> None:
    u = SensorRuntime("ups-1", registry.get("power-supervisor"), factory,
                      {"mains_pin": 26, "battery_channel": 3, "battery_low_v": 3.4}, analog=lambda cap: SettableSource())  # fmt: skip
    assert (u.pins, u.channels) == ({"mains": 26}, {"battery": 3})
    s = SensorRuntime("smoke-2", registry.get("smoke-relay-supervised"), factory, {"tamper_enabled": False})
    assert s.pins == {"contact": 5, "trouble": 6}
    with pytest.raises(DefinitionError, match=r"sensor 'ups-2' .* cannot open pins"):
        SensorRuntime("ups-2", registry.get("power-supervisor"), factory, {"mains_pin": 5}, analog=lambda cap: SettableSource())  # fmt: skip
    u.close()
    s.close()


def test_panic_button_with_a_lid_tamper(factory: MockFactory) -> None:
    p = SensorRuntime("panic-2", registry.get("panic-button-tamper"), factory)
    assert p.pins == {"button": 22, "tamper": 16}
    lid = factory.pin(16)
    lid.drive_low()  # lid on: the NC loop is closed
    assert p.poll(0.0) == []
    lid.drive_high()  # cover removed
    p.poll(0.1)
    [ch] = p.poll(0.35)
    assert (ch.kind, ch.alarm, ch.cause) == ("tamper", True, "tamper")
    p.close()
