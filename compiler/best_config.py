"""The best trial's config: the user's config file with the sweep's best values written in.

A `model_config` YAML (or JSON) file is edited in place through ruamel.yaml's round trip, so
its comments, order and layout stay as the user wrote them; only the swept values change and
the `sweep` block goes (the result is the config to train the winner with, not another
sweep). A config in one of the seed's shapes is written as its normalized `model_config`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from .load import load_config
from .normalize import normalize


def best_config_text(config_path: Path, values: dict[str, Any], *, note: str) -> str:
    """``config_path``'s text with ``values`` (dotted model_config path -> value) set."""
    yaml = YAML()  # round trip: comments and key order survive
    yaml.width = 100
    data = yaml.load(config_path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("model_config"), dict):
        data = CommentedMap(normalize(load_config(config_path)).data)
    config = data["model_config"]
    for path, value in sorted(values.items()):
        _set(config, path.split("."), value)
    config.pop("sweep", None)
    out = io.StringIO()
    yaml.dump(data, out)
    header = "".join(f"# {line}\n" if line else "#\n" for line in note.splitlines())
    return header + out.getvalue()


def _set(node: Any, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = CommentedMap()
        node = node[part]
    node[parts[-1]] = value


def best_config_path(config_path: Path) -> Path:
    """Beside the config: `sweep.yaml` -> `sweep.best.yaml`, so its relative paths still hold."""
    return config_path.with_name(f"{config_path.stem}.best.yaml")
