"""The fine-tuning methods this lfm version can compile, keyed by their config name.

Each entry says which PEFT config class the emitted script builds and which parameters it
takes. One registry (a plain dict) is the only list of methods: the resolver's rules, the plan
and the template all read it, and registering a name twice is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

LORA_PARAMETERS = (
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "bias",
    "modules_to_save",
    "use_rslora",
)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    peft_config: str | None  # the peft class the script builds; None trains all weights
    parameters: tuple[str, ...]  # fine_tuning.parameters fields this method reads
    default_learning_rate: float
    quantize_4bit: bool = False
    use_dora: bool = False


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


register(
    Method(
        "lora", "LoRA: low-rank adapters on the target modules", "LoraConfig", LORA_PARAMETERS, 2e-4
    )
)
register(
    Method(
        "qlora",
        "QLoRA: LoRA on a 4-bit NF4 quantized base model",
        "LoraConfig",
        LORA_PARAMETERS,
        2e-4,
        quantize_4bit=True,
    )
)
register(
    Method(
        "dora", "DoRA: weight-decomposed LoRA", "LoraConfig", LORA_PARAMETERS, 2e-4, use_dora=True
    )
)
register(Method("full", "Full fine-tuning: every weight is trained", None, (), 2e-5))

ALWAYS_ALLOWED = ("merge_on_save",)
