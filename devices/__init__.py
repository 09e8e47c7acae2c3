"""Sensor and actuator drivers as declarative device definitions over gpiozero.

``devices.registry.get(model)`` returns a :class:`~devices.capabilities.Definition`
(plain data); ``devices.runtime`` binds it to pins of a gpiozero pin factory chosen
by name (``devices.pins.make_pin_factory``: mock, rpigpio, lgpio).
"""
