"""Quality gates: bounds on the results that make `evaluate` exit non-zero when crossed.

- `max_perplexity`: the fine-tuned model's perplexity must not exceed it.
- `min_scores`: score name -> the lowest acceptable value (e.g. `f1: 0.5`, `hellaswag: 0.3`).
- `min_improvement`: score name -> the least gain over the base model.
- `max_regression`: score name -> the most loss against the base model (e.g. `mmlu: 0.02`).

A score name is a metric key (`perplexity`, `rougeL`, `latency_p95_ms`, ...), a benchmark or a
custom evaluation (its `accuracy`). Improvement is measured in the better direction: for
perplexity and latency, lower is better. A hybrid method's adapters are each held to every gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RuntimeConfigError
from .results import sections


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
    adapter: str | None = None  # which of a hybrid method's adapters; None: the one model

    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        where = f" for adapter {self.adapter}" if self.adapter else ""
        relation = _RELATION[self.gate.split(".")[0]][self.passed]
        value = self.value + 0.0  # print -0.0 as 0
        return f"gate {self.gate} {verdict}{where}: {value:.4g} {relation} {self.bound:.4g}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gate": self.gate,
            "value": self.value,
            "bound": self.bound,
            "passed": self.passed,
        }
        if self.adapter:
            out["adapter"] = self.adapter
        return out


# gate kind -> (relation shown when it fails, relation shown when it passes)
_RELATION = {
    "max_perplexity": {False: ">", True: "<="},
    "min_scores": {False: "<", True: ">="},
    "min_improvement": {False: "<", True: ">="},
    "max_regression": {False: ">", True: "<="},
}


def check(gates: Gates, results: Mapping[str, Any], adapter: str | None = None) -> list[GateResult]:
    """Evaluate every gate against `evaluation_results` (see results.build), or against one
    hybrid adapter's section of it (`adapter` names it in the results)."""
    scores = results["scores"]
    out = []
    if gates.max_perplexity is not None:
        value = _score(scores, "perplexity", "max_perplexity")["value"]
        passed = value <= gates.max_perplexity
        out.append(GateResult("max_perplexity", value, gates.max_perplexity, passed, adapter))
    for name, bound in sorted(gates.min_scores.items()):
        value = _score(scores, name, "min_scores")["value"]
        out.append(GateResult(f"min_scores.{name}", value, bound, value >= bound, adapter))
    for name, bound in sorted(gates.min_improvement.items()):
        gain = _gain(scores, name, "min_improvement")
        out.append(GateResult(f"min_improvement.{name}", gain, bound, gain >= bound, adapter))
    for name, bound in sorted(gates.max_regression.items()):
        loss = -_gain(scores, name, "max_regression")
        out.append(GateResult(f"max_regression.{name}", loss, bound, loss <= bound, adapter))
    return out


def check_all(gates: Gates, results: Mapping[str, Any]) -> list[GateResult]:
    """Every gate for the one model evaluated, or for each adapter of a hybrid method."""
    return [
        gate
        for name, section in sections(results).items()
        for gate in check(gates, section, adapter=name)
    ]


def failure_line(checked: list[GateResult]) -> str | None:
    """One line naming the failed gates (and, for hybrids, the adapters), or None."""
    failed = [g for g in checked if not g.passed]
    if not failed:
        return None
    if not any(g.adapter for g in failed):
        return f"evaluation gates failed: {', '.join(g.gate for g in failed)}"
    by_adapter: dict[str, list[str]] = {}
    for gate in failed:
        by_adapter.setdefault(str(gate.adapter), []).append(gate.gate)
    named = "; ".join(f"{name} ({', '.join(names)})" for name, names in by_adapter.items())
    plural = "s" if len(by_adapter) > 1 else ""
    return f"evaluation gates failed for adapter{plural} {named}"


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
