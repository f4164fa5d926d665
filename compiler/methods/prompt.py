"""Prompt-learning methods: trainable virtual tokens, the base model untouched."""

from __future__ import annotations

from .base import Adapter, Code, Method, Params, call

PREFIX_PARAMETERS = ("num_virtual_tokens",)
PROMPT_PARAMETERS = ("num_virtual_tokens", "prompt_tuning_init", "prompt_tuning_init_text")


def prompt_adapter(params: Params) -> Adapter:
    extra = {}
    if params.get("prompt_tuning_init") == "TEXT":
        # peft tokenizes the init text with the base model's tokenizer, loaded above in train.py.
        extra["tokenizer_name_or_path"] = Code("tokenizer.name_or_path")
    return Adapter(
        "default",
        call("PromptTuningConfig", params, PROMPT_PARAMETERS, task_type="CAUSAL_LM", **extra),
    )


METHODS = (
    Method(
        "prefix_tuning",
        "Prefix tuning: trainable key/value prefixes in every attention layer",
        PREFIX_PARAMETERS,
        1e-2,
        lambda p: (
            Adapter(
                "default", call("PrefixTuningConfig", p, PREFIX_PARAMETERS, task_type="CAUSAL_LM")
            ),
        ),
    ),
    Method(
        "prompt_tuning",
        "Prompt tuning: trainable virtual tokens prepended to the input",
        PROMPT_PARAMETERS,
        3e-2,
        lambda p: (prompt_adapter(p),),
    ),
)
