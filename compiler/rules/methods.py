"""Method selection and method-dependent defaults."""

from __future__ import annotations

import difflib
import json
import re

from lfm.runtime.inputs import MiB, read_bounded

from ..methods import METHODS, Method, readable
from ..methods.adapters import TYPE_LEARNING_RATE, TYPE_PARAMETERS
from ..paths import config_relative, is_local
from ..resolve import Context

# Per-GPU memory (GiB) of the names the seed and common clouds use. Conservative where a model
# ships in two sizes (A100 40/80 GB -> 40).
GPU_MEMORY_GIB = {
    "t4": 16,
    "v100": 16,
    "a10": 24,
    "a10g": 24,
    "l4": 24,
    "rtx3090": 24,
    "rtx4090": 24,
    "l40": 48,
    "l40s": 48,
    "a6000": 48,
    "a100": 40,
    "a100_80gb": 80,
    "h100": 80,
    "h200": 141,
    "mi250": 64,
    "mi300": 192,
    "mi300x": 192,
}

# Attention projections per architecture family: the LoRA targets of the original papers and
# of peft's own defaults. Matched against the base model's name.
FAMILY_TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("phi-4", ("qkv_proj", "o_proj")),
    ("phi-3", ("qkv_proj", "o_proj")),
    ("phi3", ("qkv_proj", "o_proj")),
    ("gpt2", ("c_attn",)),
    ("gpt-neox", ("query_key_value",)),
    ("pythia", ("query_key_value",)),
    ("falcon", ("query_key_value",)),
    ("bloom", ("query_key_value",)),
    ("llama", ("q_proj", "v_proj")),
    ("mistral", ("q_proj", "v_proj")),
    ("mixtral", ("q_proj", "v_proj")),
    ("qwen", ("q_proj", "v_proj")),
    ("gemma", ("q_proj", "v_proj")),
    ("phi", ("q_proj", "v_proj")),
    ("smollm", ("q_proj", "v_proj")),
    ("opt", ("q_proj", "v_proj")),
)

# (IA)^3 layout per family: (target modules, the feed-forward ones among them), as in peft.
IA3_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{
        f: (("k_proj", "v_proj", "down_proj"), ("down_proj",))
        for f in ("llama", "mistral", "mixtral", "qwen", "gemma", "smollm")
    },
    "gpt2": (("c_attn", "mlp.c_proj"), ("mlp.c_proj",)),
    **{
        f: (("query_key_value", "dense_4h_to_h"), ("dense_4h_to_h",))
        for f in ("gpt-neox", "pythia", "falcon", "bloom")
    },
    **{f: (("qkv_proj", "down_proj"), ("down_proj",)) for f in ("phi-4", "phi-3", "phi3")},
}

_LLAMA_LIKE = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "lm_head",
    "embed_tokens",
)
_FUSED_QKV = (
    "query_key_value",
    "dense",
    "dense_h_to_4h",
    "dense_4h_to_h",
    "lm_head",
    "embed_out",
    "word_embeddings",
)
# Module names per family, for catching a mistyped target module at compile time.
FAMILY_MODULES: dict[str, tuple[str, ...]] = {
    **{f: _LLAMA_LIKE for f in ("llama", "mistral", "qwen", "gemma", "smollm")},
    "mixtral": (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "w1",
        "w2",
        "w3",
        "gate",
        "lm_head",
        "embed_tokens",
    ),
    "gpt2": (
        "c_attn",
        "c_proj",
        "c_fc",
        "attn.c_proj",
        "mlp.c_proj",
        "mlp.c_fc",
        "lm_head",
        "wte",
        "wpe",
    ),
    **{f: _FUSED_QKV for f in ("gpt-neox", "pythia", "falcon", "bloom")},
    **{
        f: ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head", "embed_tokens")
        for f in ("phi-4", "phi-3", "phi3")
    },
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2", "lm_head", "embed_tokens"),
    "opt": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2", "lm_head", "embed_tokens"),
}
# config.json model_type -> family key above.
MODEL_TYPES = {
    "llama": "llama",
    "mistral": "mistral",
    "mixtral": "mixtral",
    "qwen2": "qwen",
    "qwen3": "qwen",
    "gemma": "gemma",
    "gemma2": "gemma",
    "gpt2": "gpt2",
    "gpt_neox": "gpt-neox",
    "falcon": "falcon",
    "bloom": "bloom",
    "phi3": "phi3",
    "phi": "phi",
    "opt": "opt",
}
MODULE_FIELDS = (
    "target_modules",
    "adapter_target_modules",
    "feedforward_modules",
    "modules_to_save",
)

_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


def model_size_billions(name: str) -> float | None:
    """`meta-llama/Llama-2-7b-hf` -> 7.0; `SmolLM-360M` -> 0.36; None when the name says nothing."""
    match = _SIZE.search(name.rsplit("/", 1)[-1])
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2).lower()
    return number if unit == "b" else number / 1000


def gpu_memory_gib(spec: str | None) -> int | None:
    if not spec or spec == "none":
        return None
    model = spec.split("x_", 1)[-1].lower()
    return GPU_MEMORY_GIB.get(model)


def method_parameters_apply(ctx: Context) -> None:
    method = chosen_method(ctx)
    if method is None:
        available = ", ".join(sorted(METHODS))
        ctx.error(
            ("fine_tuning", "method"),
            f"method {ctx.get('fine_tuning', 'method')!r} is not available in this lfm version",
            f"available: {available}",
        )
        return
    accepted = readable(method)
    chosen = "" if ctx.user_set("fine_tuning", "method") else " (chosen by method: auto)"
    user_params = (ctx.user.get("fine_tuning", {}) or {}).get("parameters", {}) or {}
    for name in user_params:
        if name not in accepted:
            ctx.error(
                ("fine_tuning", "parameters", name),
                f"parameter '{name}' does not apply to method '{method.name}'{chosen}",
                f"'{method.name}' uses: {', '.join(accepted) or 'no parameters'}",
            )
    _adapter_type_parameters_apply(ctx, method.name, user_params)
    # Drop schema defaults of fields this method does not read: they would only mislead.
    params = ctx.config.get("fine_tuning", {}).get("parameters", {})
    for name in list(params):
        if name not in accepted:
            params.pop(name)
            ctx.decisions.pop(f"model_config.fine_tuning.parameters.{name}", None)


def _adapter_type_parameters_apply(ctx: Context, method: str, user_params: dict) -> None:
    """With `adapters`, each adapter_type reads its own fields; the others would be ignored."""
    if method != "adapters":
        return
    kind = ctx.get("fine_tuning", "parameters", "adapter_type") or "ia3"
    own = ("adapter_type", "target_modules", "merge_on_save", *TYPE_PARAMETERS[kind])
    for name in user_params:
        if name not in own:
            ctx.error(
                ("fine_tuning", "parameters", name),
                f"parameter '{name}' does not apply to adapter_type '{kind}'",
                f"'{kind}' uses: {', '.join(own)}",
            )


def prompt_init_text(ctx: Context) -> None:
    params = ("fine_tuning", "parameters")
    if ctx.get(*params, "prompt_tuning_init") == "TEXT" and not ctx.get(
        *params, "prompt_tuning_init_text"
    ):
        ctx.error(
            (*params, "prompt_tuning_init"),
            "prompt_tuning_init TEXT needs prompt_tuning_init_text",
            "the text whose token embeddings start the virtual tokens",
        )


def learning_rate_for_method(ctx: Context) -> None:
    if ctx.user_set("fine_tuning", "training", "learning_rate"):
        return
    method = chosen_method(ctx)
    if method is None:
        return
    rate, what = method.default_learning_rate, method.summary.split(":")[0]
    if method.name == "adapters":
        kind = ctx.get("fine_tuning", "parameters", "adapter_type") or "ia3"
        rate, what = TYPE_LEARNING_RATE[kind], kind
    ctx.decide(
        ("fine_tuning", "training", "learning_rate"),
        rate,
        "learning_rate_for_method",
        f"the usual peak learning rate for {method.name} ({what})",
    )


def chosen_method(ctx: Context) -> Method | None:
    """The registered method the config names (None for `auto` before it is resolved)."""
    return METHODS.get(str(ctx.get("fine_tuning", "method")))


def family_of(base_model: str) -> str | None:
    """The architecture family a model's name announces, matched as a whole word.

    `meta-llama/Llama-2-7b-hf` -> llama, `Qwen2.5-0.5B` -> qwen; `adopted-model` is not OPT.
    """
    words = "-" + re.sub(r"[^a-z0-9]+", "-", base_model.lower().rsplit("/", 1)[-1]) + "-"
    return next(
        (
            family
            for family, _ in FAMILY_TARGETS
            if re.search(rf"-{re.escape(family)}(\d|-|z-)", words)
        ),
        None,
    )


def target_modules_for_family(ctx: Context) -> None:
    """LoRA-family targets: the attention projections of the architecture."""
    method = chosen_method(ctx)
    if method is None or not method.needs_lora_targets:
        return
    if ctx.user_set("fine_tuning", "parameters", "target_modules"):
        return
    family = family_of(str(ctx.get("base_model") or ""))
    if family:
        modules: list[str] | str = list(dict(FAMILY_TARGETS)[family])
        reason = (
            f"the attention projections of the {family} family, read from the base model's name"
        )
    else:
        modules = "all-linear"
        reason = "the base model's family is not known from its name; every linear layer but the output head"
    ctx.decide(
        ("fine_tuning", "parameters", "target_modules"),
        modules,
        "target_modules_for_family",
        reason,
    )


def adapter_modules_for_family(ctx: Context) -> None:
    """Targets of the (IA)^3 family adapter: attention plus the feed-forward output layer."""
    method = chosen_method(ctx)
    if method is None or not method.needs_adapter_targets:
        return
    kind = ctx.get("fine_tuning", "parameters", "adapter_type") or "ia3"
    key = "adapter_target_modules" if method.name == "hybrid_lora_adapter" else "target_modules"
    family = family_of(str(ctx.get("base_model") or ""))
    layout = IA3_TARGETS.get(family or "")
    if not ctx.user_set("fine_tuning", "parameters", key):
        if kind == "ia3" and layout:
            targets: list[str] | str | None = list(layout[0])
            reason = f"(IA)^3 on the {family} family's key/value and feed-forward output layers"
        elif kind != "ia3" and family:
            targets = list(dict(FAMILY_TARGETS)[family])
            reason = f"{kind} on the attention projections of the {family} family"
        elif kind != "ia3":
            targets = "all-linear"
            reason = "the base model's family is not known from its name; every linear layer"
        else:
            targets, reason = None, ""
        if targets is not None:
            ctx.decide(
                ("fine_tuning", "parameters", key), targets, "adapter_modules_for_family", reason
            )
    if kind != "ia3" or ctx.user_set("fine_tuning", "parameters", "feedforward_modules"):
        _check_feedforward_subset(ctx, key)
        return
    targets = ctx.get("fine_tuning", "parameters", key)
    if layout and isinstance(targets, list):
        # Feed-forward layers must be among the targets: keep the family's that are.
        feedforward = [m for m in layout[1] if m in targets]
        ctx.decide(
            ("fine_tuning", "parameters", "feedforward_modules"),
            feedforward,
            "adapter_modules_for_family",
            f"the {family} family's feed-forward layers among the (IA)^3 targets",
        )


def _check_feedforward_subset(ctx: Context, key: str) -> None:
    """peft requires feedforward_modules to be among the (IA)^3 target modules."""
    feedforward = ctx.get("fine_tuning", "parameters", "feedforward_modules")
    targets = ctx.get("fine_tuning", "parameters", key)
    if isinstance(feedforward, list) and isinstance(targets, list):
        stray = [m for m in feedforward if m not in targets]
        if stray:
            ctx.error(
                ("fine_tuning", "parameters", "feedforward_modules"),
                f"{', '.join(map(repr, stray))} must also be in {key}",
                "(IA)^3 scales feed-forward layers among its target modules",
            )


def qlora_merge_caveat(ctx: Context) -> None:
    method = chosen_method(ctx)
    if (
        method is not None
        and method.quantize_4bit
        and ctx.get("fine_tuning", "parameters", "merge_on_save")
    ):
        ctx.warn(
            ("fine_tuning", "parameters", "merge_on_save"),
            "the QLoRA adapter trained against 4-bit weights; merged into the full-precision base, "
            "the model differs slightly from the one trained",
            "evaluate output/merged before serving it",
        )


def gradient_checkpointing_for_qlora(ctx: Context) -> None:
    method = chosen_method(ctx)
    if method is None or not method.quantize_4bit:
        return
    if ctx.user_set("fine_tuning", "training", "gradient_checkpointing"):
        return
    ctx.decide(
        ("fine_tuning", "training", "gradient_checkpointing"),
        True,
        "gradient_checkpointing_for_qlora",
        "QLoRA is chosen to save memory; checkpointing saves the most activations' memory",
    )


def target_modules_exist(ctx: Context) -> None:
    """A module name the architecture does not have is an error, when the architecture is known.

    Known from a local base model's config.json when it is here, else from the model's name.
    (Defaults never read config.json: a bundle must not depend on what exists where it compiled.)
    """
    base = str(ctx.get("base_model") or "")
    family = _family_from_config(ctx, base) or family_of(base)
    modules = FAMILY_MODULES.get(family or "")
    if not modules:
        return
    for field in MODULE_FIELDS:
        if not ctx.user_set("fine_tuning", "parameters", field):
            continue
        value = ctx.get("fine_tuning", "parameters", field)
        for name in value if isinstance(value, list) else []:
            if name not in modules and name.rsplit(".", 1)[-1] not in modules:
                close = difflib.get_close_matches(name, modules, n=1)
                ctx.error(
                    ("fine_tuning", "parameters", field),
                    f"{name!r} is not a module of {family} models",
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"{family} modules: {', '.join(modules)}",
                )


def _family_from_config(ctx: Context, base: str) -> str | None:
    if not is_local(base):
        return None
    config_file = config_relative(base, ctx.config_dir) / "config.json"
    try:
        model_type = json.loads(read_bounded(config_file, MiB, "a model config")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return MODEL_TYPES.get(str(model_type))
