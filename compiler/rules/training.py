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


# Methods whose virtual tokens the per-example position restarts of packing would not cover.
_NO_PACKING = {
    "prefix_tuning": "prefix tuning prepends virtual tokens to every sequence",
    "prompt_tuning": "prompt tuning prepends virtual tokens to every sequence",
}


def packing_default(ctx: Context) -> None:
    """Pack by default: same examples and tokens per step as padding, no compute on pads."""
    path = ("fine_tuning", "training", "packing")
    method = str(ctx.get("fine_tuning", "method"))
    blocker = _NO_PACKING.get(method)
    if ctx.user_set(*path):
        if ctx.get(*path) and blocker:
            ctx.error(path, f"packing cannot be used with {method}: {blocker}", "remove packing")
        return
    if blocker:
        ctx.decide(path, False, "packing_default", f"{blocker}: batches are padded instead")
        return
    if ctx.get("fine_tuning", "training", "batch_size") == 1:
        # Runs after fit_memory, which may have shrunk the micro-batch to 1.
        ctx.decide(
            path,
            False,
            "packing_default",
            "batch_size is 1 per device: a batch of one example has no padding to remove, so "
            "packing would only add its model check",
        )
        return
    ctx.decide(
        path,
        True,
        "packing_default",
        "each batch runs as one sequence with attention kept within each example: the same "
        "examples and tokens per step as padding, without the compute padding wastes "
        "(train.py checks the model and pads instead if it cannot pack)",
    )


def optimizer_auto(ctx: Context) -> None:
    path = ("fine_tuning", "training", "optimizer")
    if ctx.get(*path) != "auto":
        return
    ctx.decide(
        path,
        "adamw_torch_fused",
        "optimizer_auto",
        "optimizer auto: AdamW's fused kernel (torch >= 2.4, CUDA and CPU) does the same "
        "update as adamw_torch in fewer kernel launches",
    )


def dataloader_workers(ctx: Context) -> None:
    path = ("fine_tuning", "training", "dataloader_num_workers")
    if ctx.user_set(*path):
        return
    gpu = ctx.get("resources", "gpu")
    if (gpu and gpu != "none") or ctx.get("resources", "gpu_memory_gb"):
        ctx.decide(
            path,
            2,
            "dataloader_workers",
            "a GPU is declared: 2 workers collate the next batches while the GPU computes",
        )
    else:
        ctx.decide(
            path,
            0,
            "dataloader_workers",
            "no GPU declared in resources: batches are "
            "pre-tokenized and cheap to collate, and on a CPU workers would take cores from "
            "training",
        )


def speed_options(ctx: Context) -> None:
    """Explain the runtime choices and check the opt-in speedups against the hardware."""
    train = ("fine_tuning", "training")
    ctx.derive(
        "attention",
        ctx.get(*train, "attention"),
        "speed_options",
        "auto: train.py uses flash_attention_2 when flash-attn is installed on a CUDA GPU, "
        "else sdpa"
        if ctx.get(*train, "attention") == "auto"
        else f"attention {ctx.get(*train, 'attention')} as configured",
    )
    method = str(ctx.get("fine_tuning", "method"))
    ctx.derive(
        "logits",
        "every position" if method in _NO_PACKING else "loss positions",
        "speed_options",
        f"{_NO_PACKING[method]}, which shifts every position: logits for all of them"
        if method in _NO_PACKING
        else "the output layer runs only at positions whose next token has a label (the "
        "response), not over the prompt: the same loss, less compute and logits memory "
        "(train.py checks the model first and computes every position if it differs)",
    )
    no_gpu = _no_gpu_declared(ctx)
    if ctx.get(*train, "liger_kernels") and no_gpu:
        ctx.warn(
            (*train, "liger_kernels"),
            "liger_kernels needs a CUDA GPU and the liger-kernel package; no GPU is declared "
            "in resources",
        )
    if ctx.get(*train, "attention") == "flash_attention_2" and no_gpu:
        ctx.warn(
            (*train, "attention"),
            "flash_attention_2 needs a CUDA GPU and the flash-attn package; no GPU is declared "
            "in resources",
            "use attention: auto to fall back to sdpa where flash-attn is missing",
        )


def _no_gpu_declared(ctx: Context) -> bool:
    gpu = ctx.get("resources", "gpu")
    return gpu == "none" or not (gpu or ctx.get("resources", "gpu_memory_gb"))


def half_precision_without_gpu(ctx: Context) -> None:
    """bf16/fp16 with no GPU declared: train.py stops on a CPU rather than silently training
    in another precision. Runs after precision_for_gpu, which fixes DeepSpeed's precision."""
    path = ("fine_tuning", "training", "precision")
    precision = ctx.get(*path)
    if precision not in ("bf16", "fp16") or not _no_gpu_declared(ctx):
        return
    needs = f"needs a CUDA GPU{' (Ampere or newer)' if precision == 'bf16' else ''}"
    if ctx.user_set(*path):
        ctx.warn(
            path,
            f"precision {precision} {needs}; no GPU is declared in resources",
            "use precision: auto to pick bf16/fp16 on a GPU and fp32 on a CPU",
        )
        return
    # Resolved by a rule: DeepSpeed's config states the precision, so 'auto' cannot help.
    ctx.warn(
        path,
        f"precision {precision} was chosen for DeepSpeed (ds_config.json states the precision "
        f"literally) and {needs}; no GPU is declared in resources",
        "declare the GPU in resources, or set fine_tuning.training.precision: fp32 for a run "
        "on a CPU",
    )


def warmup_within_run(ctx: Context) -> None:
    """A warmup the run never finishes: the learning rate stays low and loss alerts stay off.

    Only checked when max_steps fixes the run's length: with epochs, the number of steps
    depends on the dataset's size, which is known only where the bundle runs.
    """
    train = ("fine_tuning", "training")
    warmup = ctx.get(*train, "warmup_steps") or 0
    max_steps = ctx.get(*train, "max_steps")
    if not isinstance(max_steps, int) or max_steps < 1 or warmup < max_steps:
        return
    # Alerts skip every step up to and including warmup_steps (lfm.runtime.alerts).
    consequence = (
        "loss alerts (loss_threshold, divergence), which act only after warmup, never fire"
    )
    if ctx.get(*train, "lr_scheduler") != "constant":  # the only schedule without warmup
        # Linear warmup: optimizer step k (from 0) runs at k / warmup_steps of learning_rate.
        peak = (max_steps - 1) / warmup
        consequence = (
            f"the learning rate never reaches learning_rate (it peaks at {peak:.0%} of it) and "
            + consequence
        )
    ctx.warn(
        (*train, "warmup_steps"),
        f"warmup_steps ({warmup}) is not below max_steps ({max_steps}): the run ends during "
        f"warmup, so {consequence}",
        "lower warmup_steps (a few percent of max_steps is usual)",
    )


# Logged losses the windowed loss alerts average (lfm.runtime.alerts.WINDOW; not imported: the
# runtime imports transformers, which the compile path must not).
ALERT_WINDOW = 10


def loss_alert_within_run(ctx: Context) -> None:
    """A loss_threshold the run never judges: too few losses are logged after warmup.

    loss_threshold (and divergence) average the last 10 logged losses after warmup and act only
    on a full window. Only checked when max_steps fixes the run's length (see
    warmup_within_run, which already warns when the whole run is warmup).
    """
    if not ctx.user_set("monitoring", "alerting", "loss_threshold"):
        return
    train = ("fine_tuning", "training")
    warmup = ctx.get(*train, "warmup_steps") or 0
    max_steps = ctx.get(*train, "max_steps")
    every = ctx.get(*train, "logging_steps") or 1
    if not isinstance(max_steps, int) or max_steps < 1 or warmup >= max_steps:
        return
    # Logs at every multiple of logging_steps, and always at the last step (metrics.py).
    logged = max_steps // every - warmup // every + (1 if max_steps % every else 0)
    if logged >= ALERT_WINDOW:
        return
    enough = (warmup // every + ALERT_WINDOW - 1) * every + 1  # the window fills at its end
    lower = [
        name for name, value in (("logging_steps", every - 1), ("warmup_steps", warmup)) if value
    ]
    ctx.warn(
        ("monitoring", "alerting", "loss_threshold"),
        f"loss_threshold can never fire: it acts on the mean of {ALERT_WINDOW} losses logged "
        f"after warmup, and this run logs only {logged} (max_steps {max_steps}, warmup_steps "
        f"{warmup}, logging_steps {every})",
        f"raise max_steps to at least {enough}"
        + (f" or lower {' or '.join(lower)}" if lower else "")
        + " (a NaN or infinite loss still alerts at once)",
    )
