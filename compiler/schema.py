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
