"""Simulated sensor firmware, fleets of gateways and scenarios."""
