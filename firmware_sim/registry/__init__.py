"""The registry file: model (validation) and a deterministic synthetic district generator."""

from firmware_sim.registry.generate import generate
from firmware_sim.registry.model import (
    Registry,
    load_registry,
    parse_registry,
    registry_to_yaml,
)
from protocols.catalogue import MODEL_KIND, MODEL_KINDS

__all__ = [
    "MODEL_KIND",
    "MODEL_KINDS",
    "Registry",
    "generate",
    "load_registry",
    "parse_registry",
    "registry_to_yaml",
]
