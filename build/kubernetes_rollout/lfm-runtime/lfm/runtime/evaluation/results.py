"""`eval_results.json`: the seed's `evaluation_results` shape, plus what makes it reproducible.

    {"evaluation_results": {
        "model_id": "medical_qa_v1.2.0", "timestamp": "...",
        "metrics":    {"perplexity": {"value": 8.1, "base": 11.9, "improvement": "+3.8"}, ...},
        "benchmarks": {"hellaswag": {"accuracy": 0.68, "base": 0.66, "improvement": "+0.02"}, ...},
        "rag_integration": {"rag_accuracy": 0.85, "latency_p95": "150ms"},
        "scores": {name: {"value", "base", "gain", "higher_is_better"}},   # one flat view
        "settings": {...}, "datasets": [{"source", "sha256", ...}], "versions": {...},
        "gates": [{"gate", "value", "bound", "passed"}], "passed": true}}

`improvement` is signed so that positive means better: for perplexity and latency (lower is
better) it is base minus fine-tuned. A benchmark's headline number is its `accuracy`.

A hybrid method trains several adapters; each is evaluated, and its model_path, metrics,
benchmarks, scores, rag_integration, gates and passed move into `"adapters": {name: {...}}`
(the base model, scored once, is what every adapter's improvement is measured against). The
top level then keeps what they share, every gate (each naming its `adapter`) and `passed`
(true only when every adapter passed): no adapter's numbers stand at the top for all of them.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .scoring import LOWER_IS_BETTER

RESULTS_FILE = "eval_results.json"
# One line per held-out question: the reference, each model's answer and its token F1.
EXAMPLES_FILE = "eval_examples.jsonl"
_PACKAGES = (
    "lfm",
    "torch",
    "transformers",
    "peft",
    "datasets",
    "sacrebleu",
    "rouge-score",
    "lm_eval",
)


@dataclass
class ModelScores:
    """What one model scored: metrics on the evaluation set, and per-benchmark numbers."""

    path: str
    metrics: dict[str, float] = field(default_factory=dict)
    benchmarks: dict[str, dict[str, float]] = field(default_factory=dict)
    answers: list[Any] = field(default_factory=list)  # scoring.Answer per generated prompt

    def flat(self) -> dict[str, float]:
        out = dict(self.metrics)
        out.update({name: b["accuracy"] for name, b in self.benchmarks.items() if "accuracy" in b})
        return out


def build(
    model_id: str,
    tuned: ModelScores | Mapping[str, ModelScores],
    base: ModelScores | None,
    *,
    base_model: str,
    settings: Mapping[str, Any],
    datasets: list[dict[str, Any]],
) -> dict[str, Any]:
    """The `evaluation_results` mapping (without gates: see `with_gates`).

    `tuned` is one model, or adapter name -> scores for a hybrid method's adapters.
    """
    base_flat = base.flat() if base else {}
    results: dict[str, Any] = {
        "model_id": model_id,
        "base_model": base_model,
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": dict(settings),
        "datasets": datasets,
        "versions": versions(),
    }
    if isinstance(tuned, ModelScores):
        results.update(_model_results(tuned, base_flat))
    else:
        results["adapters"] = {
            name: _model_results(scores, base_flat) for name, scores in tuned.items()
        }
    return results


def sections(results: Mapping[str, Any]) -> dict[str | None, Mapping[str, Any]]:
    """Each evaluated model's part of `results`: {None: results} for one model, else the
    adapters by name."""
    if "adapters" in results:
        return dict(results["adapters"])
    return {None: results}


def _model_results(tuned: ModelScores, base_flat: Mapping[str, float]) -> dict[str, Any]:
    scores = {
        name: _score(name, value, base_flat.get(name)) for name, value in tuned.flat().items()
    }
    out: dict[str, Any] = {
        "model_path": tuned.path,
        "metrics": {name: _headline(scores[name], "value") for name in tuned.metrics},
        "benchmarks": {
            name: {**_headline(scores[name], "accuracy"), "metrics": values}
            for name, values in tuned.benchmarks.items()
        },
        "scores": scores,
    }
    rag = _rag_integration(tuned.metrics)
    if rag:
        out["rag_integration"] = rag
    return out


def with_gates(results: dict[str, Any], gate_results: list[Any]) -> dict[str, Any]:
    """Record the gates (all of them at the top; for hybrids each adapter's in its section)."""
    results["gates"] = [g.as_json() for g in gate_results]
    results["passed"] = all(g.passed for g in gate_results)
    for name, section in results.get("adapters", {}).items():
        own = [g for g in gate_results if g.adapter == name]
        section["gates"] = [g.as_json() for g in own]
        section["passed"] = all(g.passed for g in own)
    return results


def _score(name: str, value: float, base: float | None) -> dict[str, Any]:
    higher = name not in LOWER_IS_BETTER
    gain = None if base is None else (value - base if higher else base - value)
    return {"value": value, "base": base, "gain": gain, "higher_is_better": higher}


def _headline(score: Mapping[str, Any], key: str) -> dict[str, Any]:
    entry: dict[str, Any] = {key: score["value"]}
    if score["base"] is not None:
        entry["base"] = score["base"]
        entry["improvement"] = f"{score['gain']:+.4f}"
    return entry


def _rag_integration(metrics: Mapping[str, float]) -> dict[str, Any]:
    rag: dict[str, Any] = {}
    if "rag_accuracy" in metrics:
        rag["rag_accuracy"] = metrics["rag_accuracy"]
    if "latency_p95_ms" in metrics:
        rag["latency_p95"] = f"{metrics['latency_p95_ms']:.0f}ms"
    return rag


def versions() -> dict[str, str]:
    found = {}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write atomically (temp file, then rename): a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def write_examples(
    path: str | os.PathLike[str],
    tuned: ModelScores | Mapping[str, ModelScores],
    base: ModelScores | None,
) -> Path | None:
    """Each generated answer beside the reference (and the base model's, when compared), so a
    reader sees what the scores are made of; None when no metric generated answers. A hybrid
    method's adapters each get an ``answers`` entry by name."""
    models = dict(tuned) if isinstance(tuned, Mapping) else {"": tuned}
    target = Path(path)
    if not any(m.answers for m in models.values()):
        target.unlink(missing_ok=True)  # an earlier run's answers are not this run's
        return None
    first = next(m for m in models.values() if m.answers)
    lines = []
    for index, example in enumerate(first.answers):
        row: dict[str, Any] = {"question": example.question, "reference": example.reference}
        if "" in models:
            row.update(answer=example.answer, f1=round(example.f1, 4))
        else:
            row["answers"] = {
                name: {"answer": m.answers[index].answer, "f1": round(m.answers[index].f1, 4)}
                for name, m in models.items()
                if len(m.answers) > index
            }
        if base is not None and len(base.answers) > index:
            row.update(
                base_answer=base.answers[index].answer, base_f1=round(base.answers[index].f1, 4)
            )
        lines.append(json.dumps(row, ensure_ascii=False))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, target)
    return target
