"""Alarm engine: classes and rules, lifecycle, duty schedule, routing, escalation and KPIs as
a pure core (this package's top-level modules), and its storage and workers in ``hub.alarms.store``."""
