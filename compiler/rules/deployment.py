"""What the serving side can run: vLLM serves LoRA adapters and whole models, nothing else."""

from __future__ import annotations

from ..resolve import Context

# vLLM accepts only these values for --max-lora-rank.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
LORA_METHODS = ("lora", "qlora")
# A default CPU request for autoscaled pods: the HPA measures utilisation against the request.
DEFAULT_CPU = "4"


def serving_kind(ctx: Context) -> None:
    """How vLLM loads the result: `lora` (base + --lora-modules) or `model` (a whole model)."""
    if ctx.get("deployment", "target") not in ("docker", "kubernetes"):
        return
    method = ctx.get("fine_tuning", "method")
    merged = ctx.get("fine_tuning", "parameters", "merge_on_save")
    if method == "full":
        kind, why = "model", "full fine-tuning: the output directory is a whole model"
    elif merged:
        kind, why = "model", "merge_on_save: output/merged is a whole model"
    elif method in LORA_METHODS or method == "hybrid_lora_adapter":
        kind, why = "lora", f"{method}: vLLM serves the base model with the LoRA adapter"
    else:
        ctx.warn(
            ("deployment", "target"),
            f"vLLM cannot serve {method} adapters: no serving image or manifests are emitted",
            "set fine_tuning.parameters.merge_on_save: true to serve a merged model",
        )
        return
    if method == "hybrid_lora_adapter" and not merged:
        ctx.warn(
            ("deployment", "target"),
            "hybrid_lora_adapter: vLLM serves the LoRA adapter only, not the (IA)^3-family one",
        )
    ctx.derive("serving_kind", kind, "serving_kind", why)
    if kind == "lora":
        rank = ctx.get("fine_tuning", "parameters", "r") or 16
        fits = next((r for r in VLLM_LORA_RANKS if r >= rank), None)
        if fits is None:
            ctx.error(
                ("fine_tuning", "parameters", "r"),
                f"vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}, not {rank}",
                "lower r or merge the adapter (merge_on_save: true)",
            )
            return
        ctx.derive(
            "max_lora_rank",
            fits,
            "serving_kind",
            f"the smallest vLLM --max-lora-rank value >= the trained rank {rank}",
        )


def autoscaling_bounds(ctx: Context) -> None:
    # The schema fills auto_scaling's defaults whether or not the block was written: only a
    # written block asks for an autoscaler.
    if not ctx.user_set("deployment", "auto_scaling"):
        return
    scaling = ctx.get("deployment", "auto_scaling")
    ctx.derive("autoscaling", True, "autoscaling_bounds", "deployment.auto_scaling is set")
    if ctx.get("deployment", "target") != "kubernetes":
        return
    low, high = scaling.get("min_replicas", 1), scaling.get("max_replicas", 1)
    if low > high:
        ctx.error(
            ("deployment", "auto_scaling", "min_replicas"),
            f"min_replicas {low} is more than max_replicas {high}",
        )
    if low < 1:
        ctx.error(
            ("deployment", "auto_scaling", "min_replicas"),
            "a HorizontalPodAutoscaler on CPU cannot scale to 0 replicas",
            "set min_replicas: 1 or more",
        )
    if not ctx.get("deployment", "resources", "cpu"):
        ctx.decide(
            ("deployment", "resources", "cpu"),
            DEFAULT_CPU,
            "autoscaling_bounds",
            "the autoscaler's cpu_threshold is a percentage of the pods' CPU request",
        )


def images_pinned(ctx: Context) -> None:
    """An image is a tag or a digest that stays put: `latest` names whatever was pushed last,
    so a restarted pod could run other code than the one reviewed."""
    from ..plan_deployment import IMAGE_TAG, split_image

    for path, untagged_ok in (
        (("deployment", "kubernetes", "image"), True),  # lfm tags it with the version
        (("deployment", "serving", "image"), False),
    ):
        reference = ctx.get(*path)
        if not isinstance(reference, str):
            continue
        _, tag, digest = split_image(reference)
        if digest:
            continue
        if tag == "latest" or (tag is None and not untagged_ok):
            ctx.error(
                path,
                f"{reference} is not pinned: `latest` (or no tag) names whatever was pushed "
                "last, so a restarted pod could run other code",
                "give a version tag (e.g. :v1.2.0) or a digest (@sha256:...)"
                + ("; or no tag, and lfm tags it with the config's version" if untagged_ok else ""),
            )
        elif tag is not None and not IMAGE_TAG.fullmatch(tag):
            ctx.error(path, f"{reference}: {tag!r} is not an image tag", "e.g. :1.2.0")
