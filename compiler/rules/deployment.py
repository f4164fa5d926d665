"""What the serving side can run: vLLM serves LoRA adapters and whole models, nothing else."""

from __future__ import annotations

from typing import Any

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


# The rollout block's defaults, which are `lfm rollout start`'s: the registry's Guards dataclass
# and DEFAULT_HOLD_S (lfm.registry.rollouts) hold them. The compiler and the registry are one
# layer that must not import each other (pyproject's import-linter contract), and no lower
# layer owns rollouts (lfm.runtime is what a bundle imports), so they are repeated here, and
# tests/test_rules.py requires the two, and the schema's "Default:" texts, to agree. They are
# not schema defaults: those would give every config a rollout. `seed` has none: left out,
# each rollout's keyless draw is seeded with its own id when it starts.
ROLLOUT_DEFAULTS = (
    (("hold",), 300, "each step holds 5 minutes, as `lfm rollout start --hold`"),
    (("guard_rails", "min_requests"), 20, "as `lfm rollout start --min-requests`"),
    (("guard_rails", "window"), 300, "as `lfm rollout start --window`"),
    (("guard_rails", "max_error_rate_increase"), "5%", "as `--max-error-rate-increase`"),
    (("guard_rails", "max_p95_ratio"), 2, "as `lfm rollout start --max-p95-ratio`"),
    (("guard_rails", "max_rating_drop"), 0.1, "as `lfm rollout start --max-rating-drop`"),
)
CANARY_STEPS = [10, 50, 100]
STRATEGY_NAMES = {"canary": "a canary", "ab": "an A/B", "blue_green": "a blue-green"}
ROLLOUT = ("deployment", "rollout")
NEEDS_STABLE = "a rollout on Kubernetes needs stable_version: the version serving now"
NEEDS_STABLE_HINT = 'e.g. stable_version: "1.2.0" (its image is the serving image tagged 1.2.0)'
NEEDS_GATEWAY = "a rollout on Kubernetes needs gateway: the Gateway its HTTPRoute attaches to"
NEEDS_GATEWAY_HINT = (
    "e.g. gateway: inference-gateway (a Gateway in the same namespace; NAMESPACE/NAME for one "
    "in another)"
)
OWN_VERSION_HINT = "give the version serving now; this config's version is the candidate"
HOSTNAMES_ELSEWHERE = (
    "hostnames are the Kubernetes HTTPRoute's: without target: kubernetes and vLLM manifests "
    "nothing uses them"
)


def rollout_declared(ctx: Context) -> None:
    """A declared rollout: its strategy's settings checked and its defaults filled, so that
    `lfm rollout start --from BUNDLE` and the Kubernetes manifests read one resolved block."""
    if not ctx.user_set(*ROLLOUT) or not isinstance(ctx.get(*ROLLOUT), dict):
        return
    strategy = ctx.get(*ROLLOUT, "strategy")
    for path, value, why in ROLLOUT_DEFAULTS:
        if not ctx.user_set(*ROLLOUT, *path):
            ctx.decide((*ROLLOUT, *path), value, "rollout_declared", why)
    _rollout_strategy(ctx, strategy)
    if ctx.get("deployment", "target") == "kubernetes" and "serving_kind" in ctx.derived:
        _rollout_on_kubernetes(ctx)
    else:
        _rollout_for_lfm_serve(ctx)
    ctx.derive("rollout", strategy, "rollout_declared", "deployment.rollout is set")


def _rollout_strategy(ctx: Context, strategy: str | None) -> None:
    steps, split = ctx.get(*ROLLOUT, "steps"), ctx.get(*ROLLOUT, "split")
    called = STRATEGY_NAMES.get(str(strategy), str(strategy))
    if strategy != "canary" and steps is not None:
        message = f"steps are a canary's; {called} rollout has none"
        ctx.error((*ROLLOUT, "steps"), message, "remove steps, or set strategy: canary")
    if strategy != "ab" and split is not None:
        message = f"split is an A/B test's; {called} rollout has none"
        ctx.error((*ROLLOUT, "split"), message, "remove split, or set strategy: ab")
    if strategy == "canary":
        _canary_steps(ctx, steps)
    if strategy == "ab":
        _ab_split(ctx, split)


def _canary_steps(ctx: Context, steps: Any) -> None:
    here = (*ROLLOUT, "steps")
    if steps is None:
        why = "a canary's default steps, as `lfm rollout start --canary 10%`"
        ctx.decide(here, list(CANARY_STEPS), "rollout_declared", why)
    elif isinstance(steps, list) and steps != sorted(steps):
        ctx.error(here, f"a canary's steps must not go down: {steps}", "e.g. [10, 50, 100]")
    elif isinstance(steps, list) and steps and steps[-1] != 100:
        # The last step promotes: below 100 the environment would move to a version that
        # never took all the traffic.
        message = f"a canary's last step must be 100 (it promotes there), not {steps[-1]:g}"
        ctx.error(here, message, f"e.g. {[*steps, 100]}")


def _ab_split(ctx: Context, split: Any) -> None:
    if split is None:
        ctx.error(
            ROLLOUT, "an A/B rollout needs its split", 'e.g. split: "50/50" (stable/candidate)'
        )
    elif isinstance(split, str):
        parts = [float(p) for p in split.split("/") if p.replace(".", "", 1).isdigit()]
        if len(parts) == 2 and (abs(sum(parts) - 100) > 1e-6 or 0 in parts):
            message = f"split {split!r}: the two shares must each be more than 0 and add up to 100"
            ctx.error((*ROLLOUT, "split"), message, 'e.g. "50/50" or "90/10"')


def _rollout_on_kubernetes(ctx: Context) -> None:
    """The vLLM manifests run the candidate beside the stable version: they need its version
    (the stable image's tag and the stable Service's backendRef) and the Gateway whose
    HTTPRoute weights the two."""
    stable = ctx.get(*ROLLOUT, "stable_version")
    if stable is None:
        ctx.error(ROLLOUT, NEEDS_STABLE, NEEDS_STABLE_HINT)
    elif stable == ctx.get("version"):
        message = f"stable_version {stable} is this config's own version: nothing to roll out"
        ctx.error((*ROLLOUT, "stable_version"), message, OWN_VERSION_HINT)
    if ctx.get(*ROLLOUT, "gateway") is None:
        ctx.error(ROLLOUT, NEEDS_GATEWAY, NEEDS_GATEWAY_HINT)


def _rollout_for_lfm_serve(ctx: Context) -> None:
    """Without vLLM manifests the rollout is the registry's, run by the `lfm serve` servers that
    follow the environment, and they follow LoRA adapters only (--adapter NAME=NAME@ENV)."""
    if ctx.get(*ROLLOUT, "hostnames") is not None:
        ctx.warn((*ROLLOUT, "hostnames"), HOSTNAMES_ELSEWHERE)
    whole = _whole_model(ctx)
    if whole is not None:
        ctx.warn(
            ROLLOUT,
            f"this rollout can never run: {whole}, and lfm serve runs rollouts for LoRA adapters "
            "only (it follows an environment with --adapter NAME=NAME@ENV), so `lfm rollout "
            "start` refuses it",
            "promote the new version with lfm promote, or serve it on Kubernetes with vLLM "
            "(target: kubernetes), where the HTTPRoute weights the two",
        )


def _whole_model(ctx: Context) -> str | None:
    """Why this config's result is not a LoRA adapter `lfm serve` can follow, or None."""
    method = ctx.get("fine_tuning", "method")
    if ctx.get("task") == "embedding":
        return "task: embedding trains a whole embedding model"
    if method == "full":
        return "method: full trains a whole model"
    if ctx.get("fine_tuning", "parameters", "merge_on_save"):
        return "merge_on_save registers a merged whole model"
    return None
