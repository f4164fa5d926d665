"""`lfm evaluate` (and `llamafarm models evaluate`): score a trained model, optionally against
its base or another model, with gates that set the exit status.

    lfm evaluate --model build/my/output --dataset holdout.jsonl --metrics perplexity,rouge
    lfm evaluate --model ./trained_models/lora_v1 --benchmark hellaswag
    lfm evaluate --model A --compare B --dataset holdout.jsonl

The work is lfm.runtime.evaluation.standalone's; torch, transformers and lm-eval are imported
only inside the command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .common import missing_extra, needs_extra, trust_code_option

EXIT_GATE_FAILED = 1
METRIC_NAMES = (
    "perplexity",
    "bleu",
    "chrf",
    "rouge",
    "exact_match",
    "f1",
    "rag_accuracy",
    "latency",
)


def _metrics(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise click.BadParameter(
            f"unknown metric(s) {', '.join(unknown)}; use any of {', '.join(METRIC_NAMES)}"
        )
    return names


def _bounds(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    out = {}
    for item in values:
        name, sep, number = item.partition("=")
        try:
            out[name.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=NUMBER (e.g. f1=0.5), got {item!r}")
    return out


@click.command("evaluate")
@click.option(
    "--model",
    "model",
    required=True,
    help="Model to evaluate: a training run's output directory (adapter or full model; each adapter of a hybrid run), a model directory or a hub id.",
)
@click.option(
    "--base", help="Base model of an adapter [default: the one its adapter_config.json names]."
)
@click.option(
    "--dataset",
    type=click.Path(dir_okay=False),
    help="Evaluation records (JSONL/JSON/CSV: alpaca, chat or question/answer[/context]).",
)
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "alpaca", "chatml", "messages", "sharegpt", "completion"]),
    help="Record format of --dataset.",
)
@click.option(
    "--metrics",
    default="perplexity",
    show_default=True,
    callback=_metrics,
    help=f"Comma-separated, of: {', '.join(METRIC_NAMES)}.",
)
@click.option(
    "--benchmark",
    "benchmarks",
    multiple=True,
    help="An lm-eval task (hellaswag, mmlu, ...) or a task YAML; repeatable.",
)
@click.option(
    "--tasks-dir",
    type=click.Path(file_okay=False),
    help="A folder of lm-eval task YAMLs (local benchmark data).",
)
@click.option(
    "--num-fewshot",
    type=click.IntRange(min=0),
    help="Few-shot examples per benchmark question [default: the task's].",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Score at most this many examples (per set and per benchmark).",
)
@click.option(
    "--compare", "compare", help="Another model, evaluated on the same data and shown side by side."
)
@click.option(
    "--compare-base", is_flag=True, help="Also evaluate the base model and report improvements."
)
@click.option("--max-new-tokens", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--max-perplexity", type=float, help="Gate: fail when perplexity is above this.")
@click.option(
    "--min-score",
    multiple=True,
    callback=_bounds,
    help="Gate NAME=X: fail when score NAME is below X; repeatable.",
)
@click.option(
    "--min-improvement",
    multiple=True,
    callback=_bounds,
    help="Gate NAME=X: fail when NAME gains less than X over the base/--compare model.",
)
@click.option(
    "--max-regression",
    multiple=True,
    callback=_bounds,
    help="Gate NAME=X: fail when NAME loses more than X against the base/--compare model.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Where eval_results.json and the report go [default: MODEL/eval for a directory, else ./eval].",
)
@trust_code_option
@needs_extra("training and evaluation extras", "train,eval")
def evaluate_cmd(**options: Any) -> None:
    """Evaluate a model: metrics on a dataset, lm-eval benchmarks, comparison, gates. An
    embedding model (a sentence-transformers folder) gets retrieval scores on a pairs file."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if (Path(options["model"]) / "modules.json").is_file():
        _evaluate_embedding_model(options)
        return
    if not options["dataset"] and not options["benchmarks"]:
        raise click.UsageError("give --dataset (with --metrics) or --benchmark, or both")
    try:
        from lfm.runtime.errors import RuntimeConfigError
        from lfm.runtime.evaluation import standalone
        from lfm.runtime.evaluation.model_eval import GenerationSettings
    except ImportError as exc:
        raise missing_extra(exc, "training and evaluation extras", "train,eval") from None
    if standalone.trained_on_4_bit_base(options["model"]):
        click.echo(
            f"warning: {options['model']} was trained with QLoRA on a 4-bit base, which lfm "
            "evaluate loads at full precision; to score the model as trained, run its bundle's "
            "evaluate.py (it loads the base as train.py did)",
            err=True,
        )
    request = standalone.Request(
        model=options["model"],
        base=options["base"],
        compare=options["compare"],
        compare_base=options["compare_base"],
        dataset=options["dataset"],
        format=options["fmt"],
        metrics=options["metrics"],
        benchmarks=tuple(options["benchmarks"]),
        tasks_dir=options["tasks_dir"],
        num_fewshot=options["num_fewshot"],
        limit=options["limit"],
        settings=GenerationSettings(
            max_new_tokens=options["max_new_tokens"], batch_size=options["batch_size"]
        ),
        max_perplexity=options["max_perplexity"],
        min_scores=options["min_score"],
        min_improvement=options["min_improvement"],
        max_regression=options["max_regression"],
        output=options["output"],
    )
    try:
        passed = standalone.evaluate(request)
    except RuntimeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ImportError as exc:
        raise missing_extra(exc, "evaluation extra", "eval") from None
    if not passed:  # the evaluation printed which gates failed, in one line
        sys.exit(EXIT_GATE_FAILED)


# What only a generative model's evaluation takes: refused for an embedding model rather than
# ignored (its scores are retrieval's, and its base comparison is the bundle's evaluate.py).
GENERATIVE_ONLY = (
    "base", "fmt", "metrics", "benchmarks", "tasks_dir", "num_fewshot", "compare_base",
    "max_new_tokens", "max_perplexity",
)  # fmt: skip


def _evaluate_embedding_model(options: dict[str, Any]) -> None:
    """A sentence-transformers folder (task: embedding): the questions of a pairs file search
    its passages; recall@k, MRR@10 and NDCG@10 with the gates, as the bundle's evaluate.py."""
    model = options["model"]
    context = click.get_current_context()
    given = [
        param.opts[0]
        for param in context.command.params
        if param.name in GENERATIVE_ONLY
        and context.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
    ]
    if given:
        raise click.UsageError(
            f"{model} is an embedding model (sentence-transformers): {', '.join(given)} is for "
            "generative models; give --dataset PAIRS (records with question and passage, such "
            "as heldout_pairs.jsonl) and --compare OTHER_MODEL, or run the bundle's evaluate.py "
            "to compare with the base model on every passage"
        )
    if not options["dataset"]:
        raise click.UsageError(
            f"{model} is an embedding model: give --dataset PAIRS (records with question and "
            "passage, such as the heldout_pairs.jsonl train.py writes)"
        )
    try:
        from lfm.runtime.errors import RuntimeConfigError
        from lfm.runtime.evaluation import gates, retrieval
    except ImportError as exc:
        raise missing_extra(exc, "embedding extra", "train,embedding") from None
    quality = gates.Gates(
        min_scores=options["min_score"],
        min_improvement=options["min_improvement"],
        max_regression=options["max_regression"],
    )
    output = options["output"] or str(Path(model) / "eval")
    try:
        passed = retrieval.evaluate_file(
            model,
            options["dataset"],
            quality,
            compare=options["compare"],
            output_dir=output,
            batch_size=options["batch_size"],
            limit=options["limit"],
        )
    except RuntimeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ImportError as exc:  # sentence-transformers, imported where the models load
        raise missing_extra(exc, "embedding extra", "train,embedding") from None
    if not passed:
        sys.exit(EXIT_GATE_FAILED)
