"""The seed's `hybrid_lora_adapter`: a LoRA adapter and a family adapter, one after another.

Both train on the same data, each starting from the base model, and each is saved under its
own name in the output directory (`lora/` and e.g. `ia3/`), so a deployment can serve either or
swap between them. The LoRA adapter reads the LoRA fields; the second adapter `adapter_type`.
"""

from __future__ import annotations

from .adapters import family_adapter
from .base import Method, Params
from .lora import LORA_PARAMETERS, lora_adapter

HYBRID_PARAMETERS = (
    *LORA_PARAMETERS,
    "adapter_type",
    "adapter_target_modules",
    "feedforward_modules",
)


def build(params: Params) -> tuple:
    return (
        lora_adapter(params, name="lora"),
        family_adapter(params, targets_key="adapter_target_modules"),
    )


METHODS = (
    Method(
        "hybrid_lora_adapter",
        "Hybrid: a LoRA adapter and an (IA)^3-family adapter, trained one after the other",
        HYBRID_PARAMETERS,
        2e-4,
        build,
        needs_lora_targets=True,
        needs_adapter_targets=True,
    ),
)
