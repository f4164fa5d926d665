"""Values of TrainingArguments derived from the config."""

from __future__ import annotations

from ..resolve import Context

BUNDLE_OUTPUT = "output"


def evaluation_schedule(ctx: Context) -> None:
    ratio = ctx.get("dataset", "validation", "split_ratio") or 0
    steps = ctx.get("fine_tuning", "training", "eval_steps") or 0
    if ratio == 0:
        ctx.derive(
            "eval_strategy",
            "no",
            "evaluation_schedule",
            "dataset.validation.split_ratio is 0: no holdout split to evaluate",
        )
    elif steps:
        ctx.derive(
            "eval_strategy",
            "steps",
            "evaluation_schedule",
            f"evaluate the holdout split every {steps} steps",
        )
    else:
        ctx.derive(
            "eval_strategy",
            "epoch",
            "evaluation_schedule",
            "eval_steps is 0: evaluate the holdout split once per epoch",
        )


def report_to(ctx: Context) -> None:
    targets = []
    reasons = []
    if ctx.get("monitoring", "wandb_project"):
        targets.append("wandb")
        reasons.append("monitoring.wandb_project is set")
    if ctx.get("monitoring", "mlflow_tracking_uri"):
        targets.append("mlflow")
        reasons.append("monitoring.mlflow_tracking_uri is set")
    if ctx.get("monitoring", "tensorboard"):
        targets.append("tensorboard")
        reasons.append("monitoring.tensorboard is true")
    reason = (
        "; ".join(reasons) or "no tracker configured in monitoring; metrics.json is always written"
    )
    ctx.derive("report_to", targets or ["none"], "report_to", reason)
