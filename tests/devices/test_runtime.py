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
