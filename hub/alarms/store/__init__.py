"""The alarm tables (``models.py``), mass-event incidents (``incidents.py``) and the
registry lookups of a decision (``registry.py``). The engine that writes them is in
``hub/alarms/engine/``."""
