"""Sensor and actuator drivers as declarative device definitions over gpiozero."""
