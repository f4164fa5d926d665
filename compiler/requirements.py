"""The pinned packages a bundle needs, from the constraints list shipped with lfm.

A bundle pins the set of versions this lfm release is tested with, never whatever happens to be
installed where `lfm compile` ran (that would make bundles differ between machines).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from .methods import Method

CONSTRAINTS_FILE = "constraints.txt"


@lru_cache(maxsize=1)
def constraints() -> dict[str, str]:
    """Package name -> pinned requirement line, from templates/constraints.txt."""
    text = resources.files("lfm.templates").joinpath(CONSTRAINTS_FILE).read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[line.split("==", 1)[0].lower()] = line
    return pins


def requirements_for(method: Method, cfg: dict[str, Any]) -> tuple[str, ...]:
    names = ["torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "tokenizers"]
    if method.quantize_4bit:
        names.append("bitsandbytes")
    if cfg["distributed"]["strategy"].startswith("deepspeed"):
        names.append("deepspeed")
    monitoring = cfg.get("monitoring", {})
    if monitoring.get("wandb_project"):
        names.append("wandb")
    if monitoring.get("mlflow_tracking_uri"):
        names.append("mlflow")
    if monitoring.get("tensorboard"):
        names.append("tensorboard")
    pins = constraints()
    return tuple(sorted(pins[name] for name in names))
