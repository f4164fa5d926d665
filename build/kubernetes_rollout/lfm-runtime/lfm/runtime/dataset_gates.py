"""Dataset gates: bounds on the report's metrics, written as the seed writes them (">0.7").

Pure Python (standard library only), because the compiler imports it: `lfm compile` checks gate
strings with :func:`parse_gate` when it resolves a model_config, and lfm.dataset evaluates them
with :func:`evaluate` (`lfm dataset create|check`, and a documents bundle before it trains).
Both packages import it from here, the layer under both.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The report metrics a gate may bound (all in [0, 1]); a gate on domain_relevance turns its
# scoring on.
GATED_METRICS = ("diversity_score", "quality_score", "domain_relevance")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_GATE = re.compile(r"^\s*(>=|<=|>|<)?\s*([0-9]*\.?[0-9]+)\s*$")


class GateError(ValueError):
    """A threshold that is not a comparison with a number."""


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str  # one of _OPS; a plain number means ">="
    bound: float

    def passes(self, value: float) -> bool:
        return _OPS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op}{self.bound:g}"


def parse_gate(metric: str, threshold: Any) -> Gate:
    """``">0.7"``, ``">=0.7"``, ``"<0.2"`` or a plain number (a minimum) -> a Gate."""
    if metric not in GATED_METRICS:
        raise GateError(f"{metric!r} has no gate; gated metrics: {', '.join(GATED_METRICS)}")
    if isinstance(threshold, bool):
        raise GateError(f"{metric} threshold {threshold!r} is not a number or a comparison")
    if isinstance(threshold, int | float):
        return Gate(metric, ">=", float(threshold))
    match = _GATE.match(threshold) if isinstance(threshold, str) else None
    if match is None:
        raise GateError(
            f"{metric} threshold {threshold!r} is not a comparison with a number "
            '(write e.g. ">0.7", ">=0.7", "<0.2" or 0.7)'
        )
    return Gate(metric, match.group(1) or ">=", float(match.group(2)))


def evaluate(gates: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each gate's outcome: {metric: {threshold, value, passed}}; a metric the dataset could
    not measure (no records) fails its gate."""
    results: dict[str, dict[str, Any]] = {}
    for metric, threshold in sorted(gates.items()):
        gate = parse_gate(metric, threshold)
        value = metrics.get(metric)
        passed = isinstance(value, int | float) and gate.passes(float(value))
        results[metric] = {"threshold": str(gate), "value": value, "passed": passed}
    return results


def failures(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per failed gate, naming the metric, its value and the bound."""
    return [
        f"{metric} {r['value']} does not meet its gate {r['threshold']}"
        for metric, r in results.items()
        if not r["passed"]
    ]
