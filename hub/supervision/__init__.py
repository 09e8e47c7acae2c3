"""Supervision: silence is an alarm too.

core
    the pure rules: which supervisory conditions hold (gateway silent/offline, clock
    suspect, sensor silent, ...) given what the database knows and the time.
conditions
    recording them: open once, restore once, even with several hub workers.
service
    the tick that reads connectivity, runs the core, records and notifies.
"""
