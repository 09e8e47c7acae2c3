"""The device catalogue as plain data: every sensor model id and the event kinds it raises,
its primary kind (the register's ``kind`` column) first.

``devices/definitions.py`` is the source (a model is a definition there); this table lets
the hub's register importer and the simulator check models without importing ``devices/``
(``tests/firmware_sim/test_registry.py`` keeps the two equal). Output-only models (buzzer, LED) are
not sensors and are absent.
"""

from __future__ import annotations

MODEL_KINDS: dict[str, tuple[str, ...]] = {
    "smoke-dry-contact": ("smoke",),
    "smoke-relay-supervised": ("smoke", "battery_low", "tamper"),
    "gas-detector": ("gas",),
    "panic-button": ("panic",),
    "panic-button-tamper": ("panic", "tamper"),
    "power-supervisor": ("mains_lost", "battery_low"),
}
#: The event kind each sensor model is registered as (its primary kind).
MODEL_KIND: dict[str, str] = {model: kinds[0] for model, kinds in MODEL_KINDS.items()}
