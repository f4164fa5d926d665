"""`fine_tuning.objective`: supervised fine-tuning, or a preference objective on TRL.

A preference objective fixes what the data must be (pairs, or KTO's good and bad completions),
which methods it combines with (TRL's reference model is the base with the LoRA-family
adapter disabled, or a frozen copy for full fine-tuning; ORPO and SimPO need none), and fills
the objective's own settings (beta, loss) with TRL's defaults, each with its reason.
"""

from __future__ import annotations

from typing import Any

from lfm.runtime.formats import PREFERENCE_FORMATS

from ..resolve import Context
from .evaluation import PAIR_SCORES, scores_held_out_pairs

PREFERENCE_OBJECTIVES = ("dpo", "orpo", "kto", "simpo")
# Each objective's TRL trainer, as the emitted train.py names it.
TRAINERS = {"dpo": "DPOTrainer", "orpo": "ORPOTrainer", "kto": "KTOTrainer", "simpo": "CPOTrainer"}
METHODS = ("lora", "qlora", "dora", "full")
PAIRED_ONLY = ("dpo", "orpo", "simpo")  # KTO also takes unpaired completions
LABEL_SMOOTHED = ("sigmoid", "robust")  # the DPO losses that read label_smoothing
LOSSES = {
    "dpo": ("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "apo_zero", "apo_down",
            "sigmoid_norm"),
    "kto": ("kto", "apo_zero_unpaired"),
}  # fmt: skip
# TRL's own defaults, per objective (SimPO's from its paper's recommended range).
DEFAULTS: dict[str, dict[str, Any]] = {
    "dpo": {"beta": 0.1, "loss_type": "sigmoid", "label_smoothing": 0.0},
    "kto": {"beta": 0.1, "loss_type": "kto", "desirable_weight": 1.0, "undesirable_weight": 1.0},
    "orpo": {"beta": 0.1},
    "simpo": {"beta": 2.0, "simpo_gamma": 0.5, "label_smoothing": 0.0},
}
_MEANING: dict[str, str | dict[str, str]] = {
    "beta": {
        "dpo": "DPO's beta, TRL's default: how far the policy may move from the reference",
        "kto": "KTO's beta, TRL's default: how far the policy may move from the reference",
        "orpo": "ORPO's lambda (TRL's beta), TRL's default: the weight of the odds-ratio term",
        "simpo": "SimPO's reward scale, the paper's recommended 2.0 (its range is 2.0-2.5)",
    },
    "loss_type": {
        "dpo": "the sigmoid loss of the DPO paper, TRL's default",
        "kto": "KTO's own loss, TRL's default",
    },
    "label_smoothing": "no label noise assumed (TRL's default)",
    "simpo_gamma": "SimPO's target reward margin, TRL's default",
    "desirable_weight": "good and bad completions weigh the same (TRL's default)",
    "undesirable_weight": "good and bad completions weigh the same (TRL's default)",
}
RULE = "preference_objective"


def preference_objective(ctx: Context) -> None:
    objective = ctx.get("fine_tuning", "objective") or "sft"
    fmt = ctx.get("dataset", "preprocessing", "format")
    if objective == "sft":
        _sft(ctx, fmt)
        return
    if ctx.get("task") == "embedding":
        ctx.error(
            ("fine_tuning", "objective"),
            f"objective {objective} tunes a generative model; task: embedding trains an encoder",
            "remove fine_tuning.objective, or set task: generation",
        )
        return
    method = ctx.get("fine_tuning", "method")
    if method not in METHODS:
        ctx.error(
            ("fine_tuning", "method"),
            f"objective {objective} trains with TRL's {TRAINERS[objective]}, which takes a model "
            f"with a LoRA-family adapter (its reference is the base with the adapter disabled) "
            f"or every weight (a frozen copy as reference); {method} is neither",
            "use method lora, qlora, dora or full",
        )
    _data(ctx, objective, fmt)
    _settings(ctx, objective)
    _no_packing(ctx, objective)
    _evaluation(ctx, objective)
    _what_trl_refuses(ctx, objective, method)
    reference = (
        "none"
        if objective in ("orpo", "simpo")
        else ("frozen_copy" if method == "full" else "adapter_disabled")
    )
    why = {
        "none": f"{objective} compares the chosen and rejected completions under the policy "
        "alone: no reference model",
        "frozen_copy": "full fine-tuning changes every weight, so TRL keeps a frozen copy of the "
        "base as the reference (twice the model's memory)",
        "adapter_disabled": "the reference is the base model with the adapter disabled, as TRL "
        "does for a PEFT model: no second copy in memory",
    }[reference]
    ctx.derive("preference_reference", reference, RULE, why)


def _sft(ctx: Context, fmt: str | None) -> None:
    if ctx.user_set("fine_tuning", "preference"):
        ctx.warn(
            ("fine_tuning", "preference"),
            "preference settings apply to objectives dpo, orpo, kto and simpo; objective sft "
            "ignores them",
            "set fine_tuning.objective, or remove the preference block",
        )
    ft = ctx.config.get("fine_tuning")
    if isinstance(ft, dict):
        ft.pop("preference", None)
    if fmt in PREFERENCE_FORMATS:
        ctx.error(
            ("dataset", "preprocessing", "format"),
            f"format {fmt} holds preference data, but fine_tuning.objective is sft",
            "set fine_tuning.objective: dpo (or orpo, kto, simpo)",
        )


def _data(ctx: Context, objective: str, fmt: str | None) -> None:
    if ctx.get("dataset", "source", "type") in ("documents", "rag_documents"):
        ctx.error(
            ("dataset", "source", "type"),
            f"objective {objective} learns from preference records; documents give question "
            "and answer pairs (objective sft)",
            "point dataset.source at a file of prompt/chosen/rejected records",
        )
        return
    if fmt in (None, "auto"):
        return
    if fmt not in PREFERENCE_FORMATS:
        ctx.error(
            ("dataset", "preprocessing", "format"),
            f"objective {objective} needs preference records; format {fmt} is for objective sft",
            "set format: preference (prompt, chosen, rejected)"
            + (" or unpaired_preference (prompt, completion, label)" if objective == "kto" else ""),
        )
    elif fmt == "unpaired_preference" and objective in PAIRED_ONLY:
        ctx.error(
            ("dataset", "preprocessing", "format"),
            f"objective {objective} learns from pairs; unpaired_preference records have one "
            "completion each",
            "use objective kto for unpaired records, or give prompt/chosen/rejected pairs",
        )


def _settings(ctx: Context, objective: str) -> None:
    written = ctx.get("fine_tuning", "preference") or {}
    allowed = DEFAULTS[objective]
    for key in written:
        if key not in allowed and key != "loss_type":
            users = ", ".join(o for o, d in DEFAULTS.items() if key in d)
            ctx.error(
                ("fine_tuning", "preference", key),
                f"{key} applies to objective {users}, not {objective}",
                f"remove fine_tuning.preference.{key}",
            )
    loss = written.get("loss_type")
    if loss is not None and loss not in LOSSES.get(objective, ()):
        choices = LOSSES.get(objective)
        ctx.error(
            ("fine_tuning", "preference", "loss_type"),
            f"loss_type {loss} is not one of {objective}'s"
            + (f" ({', '.join(choices)})" if choices else f": {objective} has a single loss"),
            "choose another loss_type" if choices else "remove fine_tuning.preference.loss_type",
        )
    for key, value in allowed.items():
        if key in written:
            continue
        meaning = _MEANING[key]
        reason = meaning[objective] if isinstance(meaning, dict) else meaning
        ctx.decide(("fine_tuning", "preference", key), value, RULE, reason)


def _what_trl_refuses(ctx: Context, objective: str, method: str) -> None:
    """What TRL's trainers would refuse only once train.py runs, refused here instead."""
    batch = ctx.get("fine_tuning", "training", "batch_size")
    if objective == "kto" and isinstance(batch, int) and batch < 2:
        ctx.error(
            ("fine_tuning", "training", "batch_size"),
            f"objective kto needs at least 2 completions per device batch (its KL estimate "
            f"pairs each completion with another's prompt), got {batch}",
            "raise batch_size (with gradient_accumulation_steps for the same effective batch)",
        )
    targets = ctx.get("fine_tuning", "parameters", "target_modules")
    if method != "full" and isinstance(targets, list) and "lm_head" in targets:
        ctx.error(
            ("fine_tuning", "parameters", "target_modules"),
            f"objective {objective}: TRL computes the log-probabilities from lm_head's weight "
            "directly, so an adapter on lm_head would never train",
            "remove lm_head from target_modules",
        )
    loss = ctx.get("fine_tuning", "preference", "loss_type")
    if (
        objective == "dpo"
        and ctx.user_set("fine_tuning", "preference", "label_smoothing")
        and loss not in LABEL_SMOOTHED
    ):
        ctx.warn(
            ("fine_tuning", "preference", "label_smoothing"),
            f"loss_type {loss} does not read label_smoothing (only {', '.join(LABEL_SMOOTHED)} do)",
            "remove label_smoothing, or use loss_type robust for noisy preferences",
        )


def _no_packing(ctx: Context, objective: str) -> None:
    path = ("fine_tuning", "training", "packing")
    why = f"{objective} scores each completion whole against its prompt; TRL pads its batches"
    if ctx.user_set(*path):
        if ctx.get(*path):
            ctx.error(path, f"packing cannot be used with objective {objective}: {why}",
                      "remove packing")  # fmt: skip
        return
    ctx.decide(path, False, RULE, why)


def _evaluation(ctx: Context, objective: str) -> None:
    """evaluate.py scores the held-out pairs (preference accuracy and log-prob margin) with the
    fine-tuned model and its base; the metrics that score answers need a test_set of
    question/answer records, since the held-out split is preference records."""
    if not ctx.derived.get("evaluation"):
        return
    if objective == "kto" and ctx.get("dataset", "preprocessing", "format") in (None, "auto"):
        # Pairs hold some out to score; unpaired records none: only reading the data tells.
        ctx.error(
            ("dataset", "preprocessing", "format"),
            "objective kto takes pairs or unpaired records, and evaluate.py scores held-out "
            "pairs only: with format auto, which kind this data holds is known only once it is "
            "read",
            "set dataset.preprocessing.format: preference (prompt/chosen/rejected) or "
            "unpaired_preference (prompt/completion/label)",
        )
        return
    ctx.derive(
        "held_out_pairs",
        scores_held_out_pairs(ctx),
        RULE,
        "evaluate.py scores the pairs train.py held out (a preference objective, pairs, a split)",
    )
    evaluation = ctx.get("evaluation") or {}
    path = ("evaluation", "metrics")
    if not evaluation.get("test_set"):
        if ctx.user_set(*path) and evaluation.get("metrics"):
            ctx.error(
                path,
                f"objective {objective}: {', '.join(evaluation['metrics'])} score answers to "
                "questions, and the held-out split is preference records (scored by "
                f"{' and '.join(PAIR_SCORES)})",
                "give evaluation.test_set (question/answer records), or remove evaluation.metrics",
            )
        else:
            ctx.decide(path, [], RULE, "the held-out split is preference records: evaluate.py "
                       f"scores them by {' and '.join(PAIR_SCORES)}, not perplexity")  # fmt: skip
    if scores_held_out_pairs(ctx) or any(
        evaluation.get(k) for k in ("test_set", "custom_evaluations", "benchmarks")
    ):
        return
    why = (
        "dataset.validation.split_ratio is 0"
        if not ctx.get("dataset", "validation", "split_ratio")
        else "unpaired_preference records hold out no pairs"
    )
    ctx.error(
        ("evaluation",),
        f"objective {objective}: evaluate.py has nothing to score: it scores held-out pairs, "
        f"and {why}",
        "set dataset.validation.split_ratio (e.g. 0.1) with prompt/chosen/rejected pairs, give "
        "evaluation.test_set or benchmarks, or remove the evaluation block",
    )
