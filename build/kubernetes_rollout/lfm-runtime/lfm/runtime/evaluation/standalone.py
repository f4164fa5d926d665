"""A model evaluated outside a bundle (`lfm evaluate`): on a data file, on lm-eval benchmarks,
against its base or another model, with gates.

A training run's output directory is understood as such: each adapter of a hybrid run is scored,
an adapter's base comes from its adapter_config.json, and results go to its `eval/` folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import evalset, gates, model_eval, run


@dataclass(frozen=True)
class Request:
    model: str  # a training output directory, a model directory or a hub id
    base: str | None = None  # an adapter's base [default: its adapter_config.json's]
    compare: str | None = None  # another model, scored on the same data
    compare_base: bool = False  # also score the base model
    dataset: str | None = None  # a JSONL/JSON/CSV file of records
    format: str = "auto"
    metrics: tuple[str, ...] = ("perplexity",)
    benchmarks: tuple[str, ...] = ()
    tasks_dir: str | None = None
    num_fewshot: int | None = None
    limit: int | None = None  # at most this many examples, per set and per benchmark
    settings: model_eval.GenerationSettings = field(default_factory=model_eval.GenerationSettings)
    max_perplexity: float | None = None
    min_scores: Mapping[str, float] = field(default_factory=dict)
    min_improvement: Mapping[str, float] = field(default_factory=dict)
    max_regression: Mapping[str, float] = field(default_factory=dict)
    output: str | None = None  # [default: MODEL/eval for a directory, else ./eval]


def evaluate(request: Request) -> bool:
    """Score, compare, write eval_results.json and the report; True when every gate passed."""
    model, other, base = _local(request.model), _local(request.compare), _local(request.base)
    # A hybrid run's output directory holds one folder per adapter: each is evaluated.
    adapters = model_eval.adapter_folders(model)
    first = next(iter(adapters.values()), model)
    plan = _plan(request, first, base)
    tuned: Any = (
        {name: run.score_model(path, plan, base_model=base) for name, path in adapters.items()}
        if adapters
        else run.score_model(model, plan, base_model=base)
    )
    base_model = base or _base_of(first) or model
    if other is None and request.compare_base:
        other = base_model
    compared = run.score_model(other, _plan(request, other, None)) if other else None
    quality = gates.Gates(
        max_perplexity=request.max_perplexity,
        min_scores=request.min_scores,
        min_improvement=request.min_improvement,
        max_regression=request.max_regression,
    )
    output = request.output or (str(Path(model) / "eval") if Path(model).is_dir() else "eval")
    labels = (model, other) if request.compare else ("fine-tuned", "base")
    return bool(
        run.finish(
            _model_id(model),
            tuned,
            compared,
            plan,
            quality,
            base_model=other or base_model,
            output_dir=output,
            labels=labels,
        )
    )


def trained_on_4_bit_base(model: str) -> bool:
    """Whether `model` is a training output of a QLoRA bundle (its lfm.lock.json says so): this
    module loads the base at full precision, the bundle's own evaluate.py as train.py did."""
    if not Path(model).is_dir():
        return False
    path = Path(model).resolve()
    for folder in (path, *list(path.parents)[:2]):
        lock = folder / "lfm.lock.json"
        if lock.is_file():
            try:
                config = json.loads(lock.read_text(encoding="utf-8")).get("model_config") or {}
            except (OSError, ValueError):
                return False
            return bool((config.get("fine_tuning") or {}).get("method") == "qlora")
    return False


def _plan(request: Request, model: str, base: str | None) -> run.EvalPlan:
    sets = None
    if request.dataset:
        tokenizer = model_eval.load_eval_tokenizer(model, base_model=base)
        sets = evalset.file_set(
            request.dataset, tokenizer, format=request.format, max_examples=request.limit
        )
    return run.EvalPlan(
        metrics=request.metrics if sets else (),
        evalset=sets,
        benchmarks=request.benchmarks,
        benchmark_tasks_dir=request.tasks_dir,
        num_fewshot=request.num_fewshot,
        benchmark_limit=request.limit,
        settings=request.settings,
    )


def _local(value: str | None) -> Any:
    """An existing path as an absolute one (the runtime reads bare names as hub ids)."""
    if value is None or not Path(value).exists():
        return value
    return str(Path(value).resolve())


def _base_of(model: str) -> str | None:
    config = Path(model) / "adapter_config.json"
    if config.exists():
        return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    return None


def _model_id(model: str) -> str:
    path = Path(model)
    return path.parent.name if path.name in ("output", "") else path.name
