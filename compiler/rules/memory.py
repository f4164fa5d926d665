"""Memory-driven choices: gradient checkpointing and micro-batch, from the estimate in memory.py."""

from __future__ import annotations

from ..memory import GIB, Estimate, ModelShape, Run, estimate, find_shape
from ..resolve import Context
from .methods import gpu_memory_gib, model_size_billions

HEADROOM = 0.9  # leave 10% of the GPU for the CUDA context, fragmentation and spikes


def training_gpu_memory(ctx: Context, *, or_deployment: bool = False) -> tuple[float | None, str]:
    """Per-GPU memory of the training hardware, and where that number came from.

    Only `method: auto` falls back to the deployment GPU (the seed's tree asks "limited GPU
    memory?" of the setup as a whole); settings that change train.py use `resources` alone.
    """
    if ctx.get("resources", "gpu_memory_gb"):
        return float(ctx.get("resources", "gpu_memory_gb")), "resources.gpu_memory_gb"
    places = [("resources", "gpu")] + (
        [("deployment", "resources", "gpu")] if or_deployment else []
    )
    for path in places:
        memory = gpu_memory_gib(ctx.get(*path))
        if memory:
            return float(memory), f"{'.'.join(path)} {ctx.get(*path)}"
    return None, ""


def gpu_names_known(ctx: Context) -> None:
    """A GPU name lfm has no memory figure for would silently disable the memory checks."""
    for path in (("resources", "gpu"), ("deployment", "resources", "gpu")):
        name = ctx.get(*path)
        if name and name != "none" and gpu_memory_gib(name) is None:
            if path[0] == "resources" and ctx.get("resources", "gpu_memory_gb"):
                continue
            ctx.warn(
                path,
                f"no memory figure for GPU {name!r}",
                "set resources.gpu_memory_gb to enable the memory checks",
            )


def model_shape(ctx: Context) -> ModelShape | None:
    base = str(ctx.get("base_model") or "")
    return find_shape(base, model_size_billions(base))


def run_of(
    ctx: Context,
    *,
    method: str | None = None,
    checkpointing: bool | None = None,
    micro_batch: int | None = None,
) -> Run:
    train = ctx.get("fine_tuning", "training") or {}
    targets = ctx.get("fine_tuning", "parameters", "target_modules")
    return Run(
        method=method or str(ctx.get("fine_tuning", "method")),
        half_precision=train.get("precision") != "fp32",  # a GPU run: bf16 or fp16
        micro_batch=micro_batch or train.get("batch_size", 1),
        sequence=ctx.get("dataset", "preprocessing", "max_length") or 2048,
        gradient_checkpointing=train.get("gradient_checkpointing", False)
        if checkpointing is None
        else checkpointing,
        optimizer=train.get("optimizer", "adamw_torch"),
        lora_rank=ctx.get("fine_tuning", "parameters", "r") or 16,
        lora_targets_per_layer=len(targets) if isinstance(targets, list) else 7,
        world=(ctx.get("distributed", "gpus") or 1) * (ctx.get("distributed", "nodes") or 1),
        sharding=ctx.get("distributed", "strategy") or "none",
        offload_optimizer=bool(ctx.get("distributed", "offload_optimizer")),
        offload_parameters=bool(ctx.get("distributed", "offload_parameters")),
    )


def method_auto(ctx: Context) -> None:
    """The seed's decision tree, then a check of the choice against the memory estimate."""
    if ctx.get("fine_tuning", "method") != "auto":
        _drop_selection_hints(ctx)
        return
    shape = model_shape(ctx)
    size = (
        shape.parameters / 1e9 if shape else model_size_billions(str(ctx.get("base_model") or ""))
    )
    memory, where = training_gpu_memory(ctx, or_deployment=True)
    facts = f"{size:g}B parameters" if size is not None else "an unknown model size"
    facts += f", {memory:g} GiB per GPU ({where})" if memory else ", GPU memory not declared"
    method, why = _decision_tree(ctx, size, memory)
    # Step down full -> lora -> qlora while the estimate (with checkpointing) does not fit.
    fallback = {"full": "lora", "lora": "qlora"}
    while memory and shape is not None and method in fallback:
        needed = estimate(shape, run_of(ctx, method=method, checkpointing=True)).total_gib
        if needed <= memory * HEADROOM:
            break
        why += f"; {method} needs about {needed:.1f} GiB even with checkpointing, so {fallback[method]}"
        method = fallback[method]
    ctx.decide(
        ("fine_tuning", "method"), method, "method_auto", f"method: auto with {facts}; {why}"
    )


def _drop_selection_hints(ctx: Context) -> None:
    """Hints guide `method: auto` only; with an explicit method they would mislead a reader."""
    if ctx.user_set("fine_tuning", "selection"):
        ctx.warn(
            ("fine_tuning", "selection"),
            "fine_tuning.selection only guides method: auto; ignored here",
        )
    ctx.config["fine_tuning"].pop("selection", None)
    for key in [k for k in ctx.decisions if k.startswith("model_config.fine_tuning.selection.")]:
        del ctx.decisions[key]


def _decision_tree(ctx: Context, size: float | None, memory: float | None) -> tuple[str, str]:
    """The seed's "Quick Decision Tree", branch by branch; returns (method, the branch taken)."""
    hints = ctx.get("fine_tuning", "selection") or {}
    params = ("fine_tuning", "parameters")
    if memory is not None and memory < 24:
        if size is not None and size > 13:
            return "qlora", "limited GPU memory (<24 GB) and a model over 13B: QLoRA"
        return "lora", "limited GPU memory (<24 GB) and a model of 13B or less: LoRA"
    if size is not None and size > 13 and (memory is None or memory < 80):
        return "qlora", "a model over 13B without 80 GB GPUs: QLoRA"
    if hints.get("domains", 1) > 1:
        if hints.get("switching") == "frequent":
            return "adapters", "several domains, switched often: small hot-swappable adapters"
        return "lora", "several domains, deployed together: one LoRA per domain (multi-LoRA)"
    if hints.get("priority") == "quality":
        examples = hints.get("dataset_size")
        if examples and examples > 100_000:
            return (
                "full",
                f"maximum quality with a large dataset ({examples} examples): full fine-tuning",
            )
        if examples and examples < 10_000 and not ctx.user_set(*params, "r"):
            ctx.decide(
                (*params, "r"),
                64,
                "method_auto",
                f"maximum quality with a small dataset ({examples} examples): LoRA with a higher rank",
            )
        return "lora", "maximum quality without a large dataset: LoRA"
    if ctx.get("deployment", "target") in ("kubernetes", "docker") and not ctx.user_set(
        *params, "merge_on_save"
    ):
        ctx.decide(
            (*params, "merge_on_save"),
            True,
            "method_auto",
            "a production deployment of one domain: serve LoRA merged into the base",
        )
        return "lora", "production deployment, single domain: merged LoRA"
    return "lora", "the general-purpose default: LoRA"


def fit_memory(ctx: Context) -> None:
    shape = model_shape(ctx)
    if shape is None:
        return
    memory, where = training_gpu_memory(ctx)
    budget = memory * HEADROOM * GIB if memory else None
    train = ("fine_tuning", "training")
    if memory and budget and estimate(shape, run_of(ctx)).total > budget:
        if not ctx.user_set(*train, "gradient_checkpointing") and not ctx.get(
            *train, "gradient_checkpointing"
        ):
            needed = estimate(shape, run_of(ctx)).total_gib
            ctx.decide(
                (*train, "gradient_checkpointing"),
                True,
                "fit_memory",
                f"estimated {needed:.1f} GiB without it > {memory:g} GiB ({where})",
            )
        _shrink_micro_batch(ctx, shape, budget, memory, where)
    final = estimate(shape, run_of(ctx))
    ctx.derive(
        "memory_estimate_gib", round(final.total_gib, 2), "fit_memory", _breakdown(final, shape)
    )
    ctx.derive(
        "memory_by_method_gib",
        _alternatives(ctx, shape),
        "fit_memory",
        "the same run with each method (GiB per GPU)",
    )
    if memory and budget and final.total > budget:
        ctx.warn(
            ("fine_tuning", "method"),
            f"estimated peak memory {final.total_gib:.1f} GiB per GPU exceeds {memory * HEADROOM:.1f} GiB "
            f"(90% of {memory:g} GiB, {where})",
            "try method qlora, a smaller max_length or batch_size, or more GPUs with DeepSpeed/FSDP",
        )


def _shrink_micro_batch(
    ctx: Context, shape: ModelShape, budget: float, memory: float, where: str
) -> None:
    """Halve the micro-batch and double accumulation (same effective batch) until it fits."""
    train = ("fine_tuning", "training")
    if ctx.user_set(*train, "gradient_accumulation_steps"):
        return
    batch, accumulation = (
        ctx.get(*train, "batch_size"),
        ctx.get(*train, "gradient_accumulation_steps"),
    )
    while (
        batch > 1
        and batch % 2 == 0
        and estimate(shape, run_of(ctx, micro_batch=batch)).total > budget
    ):
        batch, accumulation = batch // 2, accumulation * 2
    if batch != ctx.get(*train, "batch_size"):
        reason = f"same effective batch in {memory:g} GiB ({where}): micro-batch {batch} x {accumulation} steps"
        ctx.decide((*train, "batch_size"), batch, "fit_memory", reason)
        ctx.decide((*train, "gradient_accumulation_steps"), accumulation, "fit_memory", reason)


def _breakdown(e: Estimate, shape: ModelShape) -> str:
    parts = [
        ("weights", e.weights),
        ("gradients", e.gradients),
        ("optimizer", e.optimizer),
        ("activations", e.activations),
        ("logits", e.logits),
        ("workspace", e.overhead),
    ]
    detail = ", ".join(f"{name} {value / GIB:.2f}" for name, value in parts)
    return f"peak per GPU in GiB: {detail} ({shape.parameters / 1e9:.2f}B parameters, from the {shape.source})"


def _alternatives(ctx: Context, shape: ModelShape) -> dict[str, float]:
    return {
        method: round(estimate(shape, run_of(ctx, method=method)).total_gib, 2)
        for method in ("full", "lora", "qlora", "adapters", "prefix_tuning")
    }
