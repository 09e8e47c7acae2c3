"""Write JSON Schema files for every message to ``protocols/schema/`` (``make schemas``).

Non-Python gateways validate against these; a test keeps them in sync with the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from protocols.codec import LIMITS, MODELS

SCHEMA_DIR = Path(__file__).parent / "schema"


def schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for channel, model in MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://safehome.example/schema/v1/{channel.value}.json"
        schema["description"] = (
            f"{(model.__doc__ or '').strip().splitlines()[0] if model.__doc__ else model.__name__} "
            f"Topic channel: {channel.value}. Payload limit: {LIMITS[channel]} bytes."
        ).strip()
        out[f"{channel.value}.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in schemas().items():
        (SCHEMA_DIR / name).write_text(render(schema))
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
