"""One evaluation run: score the fine-tuned model (or each adapter of a hybrid method) and its
base on the same data, then write `eval_results.json`, the report and its chart, and check the
gates.

`evaluate.py` (emitted by `lfm compile`) and `lfm evaluate` both go through here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import training
from . import benchmarks as lm_benchmarks
from . import gates as quality_gates
from . import pairs as preference_pairs
from . import report, results, scoring
from .evalset import EvalSet
from .model_eval import GenerationSettings, load_for_eval

PathLike = str | os.PathLike[str]
_LAUNCHER_VARIABLES = {
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "ACCELERATE_USE_DEEPSPEED",
    "ACCELERATE_USE_FSDP",
}


@dataclass(frozen=True)
class EvalPlan:
    """What to measure on every model evaluated."""

    metrics: Sequence[str] = ("perplexity",)
    evalset: EvalSet | None = None  # the holdout split or a test file; None: benchmarks only
    custom_sets: Sequence[EvalSet] = ()  # Q&A sets scored with exact match and F1
    benchmarks: Sequence[str] = ()
    benchmark_tasks_dir: str | None = None
    num_fewshot: int | None = None
    benchmark_limit: int | None = None
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    # A preference objective: the held-out pairs, scored by preference accuracy and margin.
    pairs: preference_pairs.PairSet | None = None
    # QLoRA: the BitsAndBytesConfig train.py loaded the base with; every model evaluated (the
    # base too) is loaded with it, so the model scored is the one that was trained.
    quantization_config: Any = None

    def describe(self) -> dict[str, Any]:
        described = {
            "metrics": list(self.metrics),
            "benchmarks": list(self.benchmarks),
            "custom_evaluations": [s.name for s in self.custom_sets],
            "num_fewshot": self.num_fewshot,
            "benchmark_limit": self.benchmark_limit,
            "generation": asdict(self.settings),
        }
        if self.quantization_config is not None:
            described["quantization"] = describe_quantization(self.quantization_config)
        return described

    def datasets(self) -> list[dict[str, Any]]:
        sets = ([self.evalset] if self.evalset else []) + list(self.custom_sets)
        return [s.describe() for s in sets] + ([self.pairs.describe()] if self.pairs else [])


def score_model(
    model: str,
    plan: EvalPlan,
    *,
    base_model: str | None = None,
    base_dir: PathLike | None = None,
) -> results.ModelScores:
    """Load `model` (a base, a full fine-tune or an adapter on `base_model`), score it, free it."""
    _say(f"evaluating {model}")
    loaded = load_for_eval(
        model,
        base_model=base_model,
        base_dir=base_dir,
        quantization_config=plan.quantization_config,
    )
    scores = results.ModelScores(path=model)
    # Benchmarks first: a benchmark whose dataset is missing fails before minutes of scoring.
    scores.benchmarks.update(
        lm_benchmarks.run_benchmarks(
            loaded,
            plan.benchmarks,
            tasks_dir=plan.benchmark_tasks_dir,
            base_dir=base_dir,
            num_fewshot=plan.num_fewshot,
            limit=plan.benchmark_limit,
            batch_size=plan.settings.batch_size,
        )
    )
    for qa_set in plan.custom_sets:
        scores.benchmarks[qa_set.name] = scoring.score_qa(loaded, qa_set, plan.settings)
    if plan.evalset is not None and plan.metrics:
        scores.metrics, scores.answers = scoring.score_and_answers(
            loaded, plan.evalset, plan.metrics, plan.settings
        )
    if plan.pairs is not None:
        scores.metrics.update(
            preference_pairs.score_pairs(loaded.model, loaded.tokenizer, plan.pairs)
        )
    del loaded
    training.release_memory()
    return scores


def finish(
    model_id: str,
    tuned: results.ModelScores | Mapping[str, results.ModelScores],
    base: results.ModelScores | None,
    plan: EvalPlan,
    gates: quality_gates.Gates,
    *,
    base_model: str,
    output_dir: PathLike,
    labels: tuple[str, str] = ("fine-tuned", "base"),
) -> bool:
    """Write eval_results.json and the report, print a summary; False when a gate failed.

    `tuned` is one model's scores, or adapter name -> scores for a hybrid method: each adapter
    is held to every gate, and a failure names the adapter.
    """
    payload = results.build(
        model_id,
        tuned,
        base,
        base_model=base_model,
        settings=plan.describe(),
        datasets=plan.datasets(),
    )
    checked = quality_gates.check_all(gates, payload)
    results.with_gates(payload, checked)
    out = Path(output_dir)
    written = results.write_json(out / results.RESULTS_FILE, {"evaluation_results": payload})
    results.write_examples(out / results.EXAMPLES_FILE, tuned, base)
    report_path = report.write_report(payload, out)
    print_summary(payload, labels)
    for gate in checked:
        print(gate.message(), file=sys.stderr if not gate.passed else sys.stdout)
    _say(f"wrote {written} and {report_path}")
    failure = quality_gates.failure_line(checked)
    if failure:
        print(f"error: {failure}", file=sys.stderr)
    return bool(payload["passed"])


def print_summary(
    payload: dict[str, Any], labels: tuple[str, str] = ("fine-tuned", "base")
) -> None:
    """A rich table per model evaluated: each score beside the base's, and the signed gain."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for name, section in results.sections(payload).items():
        title = payload["model_id"] if name is None else f"{payload['model_id']}: adapter {name}"
        table = Table(title=title)
        model_label = labels[0] if name is None else name
        for column in ("score", model_label, labels[1], "improvement"):
            table.add_column(column, justify="left" if column == "score" else "right")
        for score_name, score in section["scores"].items():
            table.add_row(
                score_name,
                f"{score['value']:.4g}",
                "" if score["base"] is None else f"{score['base']:.4g}",
                "" if score["gain"] is None else f"{score['gain']:+.4g}",
            )
        console.print(table)


def describe_quantization(config: Any) -> dict[str, Any]:
    """The 4-bit settings a model was loaded with, for eval_results.json's settings."""
    return {
        "load_in_4bit": bool(config.load_in_4bit),
        "bnb_4bit_quant_type": config.bnb_4bit_quant_type,
        "bnb_4bit_use_double_quant": bool(config.bnb_4bit_use_double_quant),
        "bnb_4bit_compute_dtype": str(config.bnb_4bit_compute_dtype).removeprefix("torch."),
    }


def run_after_training(script: PathLike, argv: Sequence[str] = ()) -> None:
    """Run the bundle's evaluate.py once training is done (main process only); a failed gate
    or evaluation ends train.py with the same exit status."""
    if os.environ.get("RANK", "0") != "0":
        return
    training.release_memory()
    # The evaluation is one process: it must not take the launcher's variables for a rank.
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARIABLES}
    status = subprocess.call([sys.executable, str(script), *argv], env=env)
    if status:
        raise SystemExit(status)


def _say(message: str) -> None:
    print(f"[lfm] {message}", file=sys.stderr, flush=True)
