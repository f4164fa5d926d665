"""The `evaluation` block: whether evaluate.py is emitted, where its data is, and gate checks."""

from __future__ import annotations

import difflib
from pathlib import PurePosixPath

from ..paths import config_relative
from ..resolve import Context

# The score names each metric produces (gates refer to these).
SCORES_OF_METRIC = {
    "perplexity": ("perplexity",),
    "bleu": ("bleu",),
    "chrf": ("chrf",),
    "rouge": ("rouge1", "rouge2", "rougeL"),
    "exact_match": ("exact_match",),
    "f1": ("f1",),
    "rag_accuracy": ("rag_accuracy",),
    "latency": ("latency_p50_ms", "latency_p95_ms", "tokens_per_second"),
}
GENERATIVE = ("bleu", "chrf", "rouge", "exact_match", "f1", "rag_accuracy", "latency")
# What a preference objective's held-out pairs are scored by (runtime/evaluation/pairs.py).
PAIR_SCORES = ("preference_accuracy", "mean_logp_margin")
CUSTOM_DIR = "evaluations"


def objective_of(ctx: Context) -> str:
    """The training objective: sft unless fine_tuning.objective names a preference one."""
    return str(ctx.get("fine_tuning", "objective") or "sft")


def scores_held_out_pairs(ctx: Context) -> bool:
    """evaluate.py scores the held-out pairs: a preference objective whose split held some out
    (unpaired KTO records hold out no pairs)."""
    return (
        objective_of(ctx) != "sft"
        and bool(ctx.get("dataset", "validation", "split_ratio"))
        and ctx.get("dataset", "preprocessing", "format") != "unpaired_preference"
    )


def scored_metrics(ctx: Context) -> list[str]:
    """The metrics evaluate.py computes. A preference objective's held-out split is pairs, not
    answers: without a test_set only metrics the user wrote count (rules/preference.py refuses
    them, and drops the default perplexity)."""
    preference = objective_of(ctx) != "sft"
    if (
        preference
        and not ctx.get("evaluation", "test_set")
        and not ctx.user_set("evaluation", "metrics")
    ):
        return []
    return list(ctx.get("evaluation", "metrics") or [])


def _is_path(entry: str) -> bool:
    return "/" in entry or entry.endswith((".jsonl", ".json", ".csv"))


def custom_path(entry: str) -> str:
    """A custom evaluation's file: a path as written, or `evaluations/NAME.jsonl` for a name."""
    return entry if _is_path(entry) else f"./{CUSTOM_DIR}/{entry}.jsonl"


def custom_name(entry: str) -> str:
    """The name results report it under: the file's stem for a path, else the name itself."""
    return PurePosixPath(entry).stem if _is_path(entry) else entry


def evaluation_enabled(ctx: Context) -> None:
    on = ctx.user_set("evaluation")
    reason = (
        "the config has an evaluation block: evaluate.py is emitted"
        if on
        else "no evaluation block: no evaluate.py"
    )
    ctx.derive("evaluation", on, "evaluation_enabled", reason)


def evaluation_data(ctx: Context) -> None:
    if not ctx.derived.get("evaluation") or ctx.get("task") == "embedding":
        return  # (an embedding model's held-out documents: rules/embedding.py)
    metrics = scored_metrics(ctx)
    test_set = ctx.get("evaluation", "test_set")
    preference = objective_of(ctx) != "sft"
    if (
        metrics
        and not test_set
        and not preference  # (its held-out split is pairs: rules/preference.py)
        and not ctx.get("dataset", "validation", "split_ratio")
    ):
        ctx.error(
            ("evaluation", "metrics"),
            "evaluation.metrics need data to score, but dataset.validation.split_ratio is 0 and "
            "evaluation.test_set is not set",
            "set dataset.validation.split_ratio (e.g. 0.1) or evaluation.test_set: ./holdout.jsonl",
        )
    generative = [m for m in metrics if m in GENERATIVE]
    if (
        generative
        and not test_set
        and ctx.get("dataset", "preprocessing", "format") == "completion"
    ):
        ctx.error(
            ("evaluation", "metrics"),
            f"{', '.join(generative)} score answers to prompts, but the completion format has "
            "plain text only",
            "keep perplexity only, or set evaluation.test_set to a file of prompt/response records",
        )
    files = [(("evaluation", "test_set"), test_set)] if test_set else []
    files += [
        (("evaluation", "custom_evaluations"), custom_path(entry))
        for entry in ctx.get("evaluation", "custom_evaluations") or []
    ]
    tasks_dir = ctx.get("evaluation", "benchmark_tasks_dir")
    if tasks_dir:
        files.append((("evaluation", "benchmark_tasks_dir"), tasks_dir))
    for path, value in files:
        if not config_relative(value, ctx.config_dir).exists():
            ctx.warn(
                path,
                f"{value!r} does not exist here (it must exist where the bundle runs)",
                about_this_machine=True,
            )


def evaluation_gates(ctx: Context) -> None:
    if not ctx.derived.get("evaluation"):
        return
    gates = ctx.get("evaluation", "gates") or {}
    metrics = scored_metrics(ctx)
    # (An embedding model's metrics are its score names: rules/embedding.py.)
    known = [score for m in metrics for score in SCORES_OF_METRIC.get(m, (m,))]
    known += list(PAIR_SCORES) if scores_held_out_pairs(ctx) else []
    known += list(ctx.get("evaluation", "benchmarks") or [])
    known += [custom_name(e) for e in ctx.get("evaluation", "custom_evaluations") or []]
    if "max_perplexity" in gates and "perplexity" not in metrics:
        pairs_only = scores_held_out_pairs(ctx) and not ctx.get("evaluation", "test_set")
        ctx.error(
            ("evaluation", "gates", "max_perplexity"),
            "the max_perplexity gate needs perplexity in evaluation.metrics",
            # A preference objective's held-out split is pairs: perplexity needs a test_set.
            "set evaluation.test_set (question/answer records) for perplexity, or gate "
            f"{' or '.join(PAIR_SCORES)} instead"
            if pairs_only
            else None,
        )
    for kind in ("min_scores", "min_improvement", "max_regression"):
        for name in gates.get(kind) or {}:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                ctx.error(
                    ("evaluation", "gates", kind, name),
                    f"gate {kind}.{name}: no score named {name!r} is measured",
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"measured: {', '.join(known) or 'nothing'}",
                )
        if (
            kind != "min_scores"
            and gates.get(kind)
            and not ctx.get("evaluation", "compare_with_base")
        ):
            ctx.error(
                ("evaluation", "gates", kind),
                f"the {kind} gates compare with the base model, but compare_with_base is false",
                "set evaluation.compare_with_base: true",
            )
