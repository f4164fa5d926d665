"""Cross-checks between the distributed strategy and the rest of the config.

Each one either fixes a value the config left to lfm (and says why) or reports, with the
reason, a combination that would fail at launch time, minutes into a multi-GPU job.
"""

from __future__ import annotations

from ..resolve import Context

# GPUs before Ampere have no bf16 arithmetic.
NO_BF16 = ("t4", "v100", "p100", "k80", "rtx2080", "rtx2080ti")
# Optimizers DeepSpeed's own CPU Adam replaces when the optimizer state lives in CPU memory.
OFFLOADABLE_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")
TRAIN = ("fine_tuning", "training")


def _gpu_model(ctx: Context) -> str | None:
    spec = ctx.get("resources", "gpu")
    if not spec or spec == "none":
        return None
    return str(spec).split("x_", 1)[-1]


def precision_for_gpu(ctx: Context) -> None:
    """bf16 needs Ampere or newer; DeepSpeed's config needs the precision as a literal."""
    precision = ctx.get(*TRAIN, "precision")
    model = _gpu_model(ctx)
    if precision == "bf16" and model in NO_BF16:
        ctx.error(
            (*TRAIN, "precision"),
            f"bf16 on {model}: GPUs before Ampere have no bf16",
            "set precision: fp16 (or auto)",
        )
        return
    strategy = str(ctx.get("distributed", "strategy") or "none")
    if precision == "auto" and strategy.startswith("deepspeed"):
        if model in NO_BF16:
            value, why = "fp16", f"{model} has no bf16"
        else:
            value, why = "bf16", "bf16 on Ampere or newer GPUs (set fp16 for older ones)"
        ctx.decide(
            (*TRAIN, "precision"),
            value,
            "precision_for_gpu",
            f"ds_config.json states the precision literally (DeepSpeed reads no 'auto'): {why}",
        )


def quantized_sharding(ctx: Context) -> None:
    """4-bit weights are bitsandbytes tensors that ZeRO-3 and FSDP cannot partition here."""
    strategy = ctx.get("distributed", "strategy")
    if ctx.get("fine_tuning", "method") == "qlora" and strategy in ("deepspeed_zero3", "fsdp"):
        ctx.error(
            ("distributed", "strategy"),
            f"qlora with {strategy}: the 4-bit base model's weights cannot be sharded (ZeRO-3 and "
            "FSDP partition parameters, bitsandbytes packs them)",
            "use deepspeed_zero2 or ddp (each GPU holds the small 4-bit base), or method: lora "
            f"with {strategy}",
        )


def offload_fits_strategy(ctx: Context) -> None:
    strategy = str(ctx.get("distributed", "strategy") or "none")
    if ctx.get("distributed", "offload_parameters") and strategy not in ("deepspeed_zero3", "fsdp"):
        ctx.error(
            ("distributed", "offload_parameters"),
            f"offload_parameters needs sharded parameters (deepspeed_zero3 or fsdp), not {strategy}",
        )
    if not ctx.get("distributed", "offload_optimizer"):
        return
    if not strategy.startswith("deepspeed"):
        ctx.error(
            ("distributed", "offload_optimizer"),
            f"offload_optimizer is a DeepSpeed ZeRO setting; strategy is {strategy}",
            "use a deepspeed_zero strategy (with fsdp, offload_parameters offloads both)",
        )
    elif ctx.get(*TRAIN, "optimizer") not in OFFLOADABLE_OPTIMIZERS:
        ctx.error(
            (*TRAIN, "optimizer"),
            f"offload_optimizer runs DeepSpeed's CPU AdamW, which replaces "
            f"{ctx.get(*TRAIN, 'optimizer')!r} only for AdamW",
            f"use optimizer: {OFFLOADABLE_OPTIMIZERS[0]}, or turn offload_optimizer off",
        )


def checkpointing_with_sharding(ctx: Context) -> None:
    """Reentrant checkpointing re-runs the forward outside autograd, where ZeRO-3 and FSDP
    cannot re-gather sharded parameters; the non-reentrant variant works with both."""
    strategy = ctx.get("distributed", "strategy")
    sharded = strategy in ("deepspeed_zero3", "fsdp")
    if ctx.get(*TRAIN, "gradient_checkpointing") and sharded:
        ctx.derive(
            "gradient_checkpointing_kwargs",
            {"use_reentrant": False},
            "checkpointing_with_sharding",
            f"gradient checkpointing with {strategy}: the non-reentrant variant re-gathers "
            "sharded parameters correctly",
        )
