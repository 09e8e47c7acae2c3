"""The alarm engine in the database: deciding a signal (``decide.py``, with the fail-safe
alarm of ``failsafe.py`` and the mass-event desk of ``storms.py``), the operators' steps
(``actions.py``) and the escalation timers (``timers.py``), each inside a transaction.
The tables and registry lookups they use are in ``hub/alarms/store/``."""
