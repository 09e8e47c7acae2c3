"""Which parts of a hub Config the agent can apply while it runs (pure, no I/O).

Applied live: ``heartbeat_s``, ``telemetry_s``, ``backlog_order``, ``siren_enabled``,
``siren_timeout_s`` (and ``interval_s``, which only the hub's supervision uses). The sensor
list must describe the wiring this Pi runs: adding a sensor, changing its model, dropping
one or disabling one needs a new bundle (new edge.toml) and a restart, because pins are
opened at start. Such a config is refused whole, never half-applied: the agent keeps its
running revision and reports the refusal to the hub in its status (``config_error``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from protocols import Config, ConfigRefusal

NEEDS_BUNDLE = "needs a new bundle (safehome provision gateway) and a restart of the agent"


def refusal(cfg: Config, wired: Mapping[str, str]) -> ConfigRefusal | None:
    """Why ``cfg`` cannot be applied to a Pi wired as ``wired`` (sensor id -> model), or None.
    A config without sensors changes only the live settings."""

    def refused(reason: str, what: str) -> ConfigRefusal:
        return ConfigRefusal(revision=cfg.revision, reason=reason, detail=f"{what}: {NEEDS_BUNDLE}"[:500])

    unknown = sorted(s.id for s in cfg.sensors if s.id not in wired)
    if unknown:
        return refused("unknown_sensor", f"sensors not wired here: {', '.join(unknown)}")
    other = sorted(f"{s.id} is {wired[s.id]}, config says {s.model}" for s in cfg.sensors if wired[s.id] != s.model)
    if other:
        return refused("model_mismatch", "; ".join(other))
    disabled = sorted(s.id for s in cfg.sensors if not s.enabled)
    if disabled:
        return refused("sensor_disabled", f"disabling sensors is not applied live: {', '.join(disabled)}")
    missing = sorted(set(wired) - {s.id for s in cfg.sensors}) if cfg.sensors else []
    if missing:
        return refused("missing_sensor", f"wired here but not in the config: {', '.join(missing)}")
    return None


def revision_of(payload: bytes) -> int | None:
    """The ``revision`` of a config payload that failed validation, when it can be read,
    so the refusal can name it; None for anything else (an empty retained clear, garbage)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    rev = doc.get("revision") if isinstance(doc, dict) else None
    return rev if isinstance(rev, int) and not isinstance(rev, bool) and rev >= 0 else None
