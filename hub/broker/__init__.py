"""Managed central Mosquitto broker."""
