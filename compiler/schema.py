"""Access to the JSON Schema, the single place where config fields are declared."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "model_config.schema.json"


def schema_text() -> str:
    return resources.files("lfm.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    return json.loads(schema_text())


def model_config_schema() -> dict[str, Any]:
    return load_schema()["$defs"]["model_config"]


def default_of(*keys: str) -> Any:
    """The schema's default for the field at ``keys`` under model_config (e.g. "deployment",
    "serving", "image"): code that needs a default outside resolution reads it from here."""
    node = model_config_schema()
    for key in keys:
        node = node["properties"][key]
    return node["default"]
