"""Storage and workers of the alarm engine: tables, the engine that turns signals into stored,
routed alarms, lifecycle transitions with one winner, and escalation timers that fire once."""
