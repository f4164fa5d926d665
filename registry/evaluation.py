"""Metrics and gate results from an eval_results.json (lfm evaluate's, or the seed's shape).

Numbers anywhere in the file become flat metrics (``benchmarks.mmlu.accuracy``); strings like
``"+0.05"`` or ``"150ms"`` become numbers when they read as one. Gates are read from a
``gates`` entry (a list of ``{gate, passed}`` as lfm's evaluation writes it, or ``{name,
passed}``; or a mapping name -> bool or {passed}) or a top-level ``passed``/``gates_passed``
boolean.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import RegistryError
from .lineage import read_json

_NUMBER = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(%|ms|s)?\s*$")
_SKIP = {"timestamp", "model_id", "model", "settings", "versions", "dataset_sha256", "gates"}


def read_eval_results(path: Path) -> tuple[dict[str, float], dict[str, bool] | None]:
    data = read_json(path, "evaluation results")
    if not isinstance(data, dict):
        raise RegistryError(f"evaluation results {path} must hold a JSON object")
    if isinstance(data.get("evaluation_results"), dict):  # the seed's wrapper
        data = data["evaluation_results"]
    metrics: dict[str, float] = {}
    _flatten(data, "", metrics)
    return metrics, _gates(data)


def _flatten(value: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if prefix or key not in _SKIP:  # top-level bookkeeping is not a metric
                _flatten(item, f"{prefix}{key}.", out)
        return
    key = prefix.rstrip(".")
    if isinstance(value, bool) or not key:
        return
    if isinstance(value, int | float):
        out[key] = float(value)
    elif isinstance(value, str) and (match := _NUMBER.match(value)):
        out[key] = float(match.group(1))


def _gates(data: dict[str, Any]) -> dict[str, bool] | None:
    gates = data.get("gates")
    if isinstance(gates, list):
        return {
            str(g.get("gate", g.get("name", i))): bool(g.get("passed"))
            for i, g in enumerate(gates)
            if isinstance(g, dict)
        }
    if isinstance(gates, dict):
        result = {}
        for name, gate in gates.items():
            if isinstance(gate, dict) and "passed" in gate:
                result[str(name)] = bool(gate["passed"])
            elif isinstance(gate, bool):
                result[str(name)] = gate
        return result or None
    for key in ("gates_passed", "passed"):
        if isinstance(data.get(key), bool):
            return {"all": bool(data[key])}
    return None


def gate_failure(gates: dict[str, bool] | None) -> str | None:
    """Why a version may not be promoted where gates are required, or None when it may."""
    if not gates:
        return (
            "no evaluation gates are recorded for it; register it with --performance-metrics "
            "eval_results.json from an evaluation run with gates"
        )
    failed = sorted(name for name, passed in gates.items() if not passed)
    if failed:
        return f"evaluation gate(s) failed: {', '.join(failed)}"
    return None
