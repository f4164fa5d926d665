"""PEFT's adapter family, picked by `adapter_type`: (IA)^3, LoHa, LoKr and OFT."""

from __future__ import annotations

from .base import Adapter, Method, Params, PeftCall, call

ADAPTER_PARAMETERS = (
    "adapter_type",
    "target_modules",
    "feedforward_modules",
    "r",
    "lora_alpha",
    "module_dropout",
    "oft_block_size",
    "modules_to_save",
)
# The fields each adapter_type reads (beyond adapter_type and its target modules).
TYPE_PARAMETERS = {
    "ia3": ("feedforward_modules", "modules_to_save"),
    "loha": ("r", "lora_alpha", "module_dropout", "modules_to_save"),
    "lokr": ("r", "lora_alpha", "module_dropout", "modules_to_save"),
    "oft": ("oft_block_size", "module_dropout", "modules_to_save"),
}
# The usual peak learning rate per adapter_type.
TYPE_LEARNING_RATE = {"ia3": 3e-3, "loha": 4e-4, "lokr": 4e-4, "oft": 1e-4}


def family_adapter(params: Params, *, targets_key: str = "target_modules") -> Adapter:
    """The adapter `adapter_type` names, built from the shared parameter block."""
    kind = params.get("adapter_type", "ia3")
    targets = {"target_modules": params.get(targets_key)}
    shared = {**params, **targets}
    config: PeftCall
    if kind == "ia3":
        config = call(
            "IA3Config",
            shared,
            ("target_modules", "feedforward_modules", "modules_to_save"),
            task_type="CAUSAL_LM",
        )
    elif kind in ("loha", "lokr"):
        # LoHa/LoKr call the scale `alpha`; the config's lora_alpha fills it.
        renamed = {**shared, "alpha": shared.get("lora_alpha")}
        names = ("r", "alpha", "module_dropout", "target_modules", "modules_to_save")
        config = call(
            "LoHaConfig" if kind == "loha" else "LoKrConfig", renamed, names, task_type="CAUSAL_LM"
        )
    else:  # oft: orthogonal fine-tuning; blocks of oft_block_size (r is derived by peft)
        config = call(
            "OFTConfig",
            shared,
            ("oft_block_size", "module_dropout", "target_modules", "modules_to_save"),
            task_type="CAUSAL_LM",
            r=0,
        )
    return Adapter(kind, config)


METHODS = (
    Method(
        "adapters",
        "Adapters: PEFT's (IA)^3 / LoHa / LoKr / OFT adapters, by adapter_type",
        ADAPTER_PARAMETERS,
        3e-3,
        lambda p: (family_adapter(p),),
        needs_adapter_targets=True,
        mergeable=True,
    ),
)
