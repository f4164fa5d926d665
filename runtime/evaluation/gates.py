"""Quality gates: bounds on the results that make `evaluate` exit non-zero when crossed.

- `max_perplexity`: the fine-tuned model's perplexity must not exceed it.
- `min_scores`: score name -> the lowest acceptable value (e.g. `f1: 0.5`, `hellaswag: 0.3`).
- `min_improvement`: score name -> the least gain over the base model.
- `max_regression`: score name -> the most loss against the base model (e.g. `mmlu: 0.02`).

A score name is a metric key (`perplexity`, `rougeL`, `latency_p95_ms`, ...), a benchmark or a
custom evaluation (its `accuracy`). Improvement is measured in the better direction: for
perplexity and latency, lower is better.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RuntimeConfigError


@dataclass(frozen=True)
class Gates:
    max_perplexity: float | None = None
    min_scores: Mapping[str, float] = field(default_factory=dict)
    min_improvement: Mapping[str, float] = field(default_factory=dict)
    max_regression: Mapping[str, float] = field(default_factory=dict)

    @property
    def needs_base(self) -> bool:
        return bool(self.min_improvement or self.max_regression)


@dataclass(frozen=True)
class GateResult:
    gate: str  # e.g. "max_regression.hellaswag"
    value: float  # what was measured (the score, or the improvement/regression)
    bound: float
    passed: bool

    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        relation = _RELATION[self.gate.split(".")[0]][self.passed]
        value = self.value + 0.0  # print -0.0 as 0
        return f"gate {self.gate} {verdict}: {value:.4g} {relation} {self.bound:.4g}"

    def as_json(self) -> dict[str, Any]:
        return {"gate": self.gate, "value": self.value, "bound": self.bound, "passed": self.passed}


# gate kind -> (relation shown when it fails, relation shown when it passes)
_RELATION = {
    "max_perplexity": {False: ">", True: "<="},
    "min_scores": {False: "<", True: ">="},
    "min_improvement": {False: "<", True: ">="},
    "max_regression": {False: ">", True: "<="},
}


def check(gates: Gates, results: Mapping[str, Any]) -> list[GateResult]:
    """Evaluate every gate against `evaluation_results` (see results.build)."""
    scores = results["scores"]
    out = []
    if gates.max_perplexity is not None:
        value = _score(scores, "perplexity", "max_perplexity")["value"]
        out.append(
            GateResult("max_perplexity", value, gates.max_perplexity, value <= gates.max_perplexity)
        )
    for name, bound in sorted(gates.min_scores.items()):
        value = _score(scores, name, "min_scores")["value"]
        out.append(GateResult(f"min_scores.{name}", value, bound, value >= bound))
    for name, bound in sorted(gates.min_improvement.items()):
        gain = _gain(scores, name, "min_improvement")
        out.append(GateResult(f"min_improvement.{name}", gain, bound, gain >= bound))
    for name, bound in sorted(gates.max_regression.items()):
        loss = -_gain(scores, name, "max_regression")
        out.append(GateResult(f"max_regression.{name}", loss, bound, loss <= bound))
    return out


def _score(scores: Mapping[str, Any], name: str, gate: str) -> Mapping[str, Any]:
    if name not in scores:
        measured = ", ".join(sorted(scores)) or "nothing"
        raise RuntimeConfigError(
            f"evaluation.gates.{gate}: no score named {name!r} was measured (measured: "
            f"{measured}); add it to evaluation.metrics, benchmarks or custom_evaluations"
        )
    return scores[name]


def _gain(scores: Mapping[str, Any], name: str, gate: str) -> float:
    entry = _score(scores, name, gate)
    if entry.get("gain") is None:
        raise RuntimeConfigError(
            f"evaluation.gates.{gate}.{name} compares with the base model, which was not "
            f"evaluated; set evaluation.compare_with_base: true (lfm evaluate: --compare-base)"
        )
    return float(entry["gain"])
