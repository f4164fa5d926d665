"""LoRA and its variants: DoRA (weight-decomposed) and QLoRA (LoRA on a 4-bit base)."""

from __future__ import annotations

from .base import Adapter, Method, Params, call

LORA_PARAMETERS = (
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "bias",
    "modules_to_save",
    "use_rslora",
)


def lora_adapter(params: Params, *, use_dora: bool = False, name: str = "default") -> Adapter:
    dora = {"use_dora": True} if use_dora else {}
    return Adapter(name, call("LoraConfig", params, LORA_PARAMETERS, task_type="CAUSAL_LM", **dora))


METHODS = (
    Method(
        "lora",
        "LoRA: low-rank adapters on the target modules",
        LORA_PARAMETERS,
        2e-4,
        lambda p: (lora_adapter(p),),
        needs_lora_targets=True,
        mergeable=True,
    ),
    Method(
        "qlora",
        "QLoRA: LoRA on a 4-bit NF4 quantized base model",
        LORA_PARAMETERS,
        2e-4,
        lambda p: (lora_adapter(p),),
        quantize_4bit=True,
        needs_lora_targets=True,
        mergeable=True,  # merged into the base reloaded at full precision, not the 4-bit copy
    ),
    Method(
        "dora",
        "DoRA: weight-decomposed LoRA",
        LORA_PARAMETERS,
        2e-4,
        lambda p: (lora_adapter(p, use_dora=True),),
        needs_lora_targets=True,
        mergeable=True,
    ),
)
