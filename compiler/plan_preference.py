"""The preference objective's part of the plan: which TRL config and trainer train.py calls,
with every value written out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .methods import Arg
from .requirements import constraints
from .rules.preference import PAIRED_ONLY, TRAINERS

# TRL's config class for each objective, and the module train.py imports it from (ORPO and
# CPO live in trl.experimental since TRL 1.0).
CONFIGS = {
    "dpo": ("trl", "DPOConfig"),
    "kto": ("trl", "KTOConfig"),
    "orpo": ("trl.experimental.orpo", "ORPOConfig"),
    "simpo": ("trl.experimental.cpo", "CPOConfig"),
}


@dataclass(frozen=True)
class PreferencePlan:
    objective: str  # dpo | orpo | kto | simpo
    module: tuple[str, ...]  # where TRL keeps the config class, by its dotted parts
    config_class: str  # DPOConfig, ...: TrainingArguments plus the objective's settings
    trainer_class: str  # lfm.runtime.preference.<this>: TRL's trainer with lfm's checkpoints
    arguments: tuple[Arg, ...]  # the objective's settings, after the training arguments
    paired: bool  # the trainer reads pairs (dpo, orpo, simpo) or single completions (kto)
    reference: str  # adapter_disabled | frozen_copy | none


def preference_plan(cfg: dict[str, Any], derived: dict[str, Any]) -> PreferencePlan | None:
    objective = cfg["fine_tuning"].get("objective", "sft")
    if objective == "sft":
        return None
    settings = cfg["fine_tuning"]["preference"]
    module, config_class = CONFIGS[objective]
    arguments = [Arg("beta", settings["beta"])]
    if objective == "dpo":
        # TRL 1.x takes a list: several losses combine (MPO); lfm writes the one chosen.
        arguments.append(Arg("loss_type", [settings["loss_type"]]))
    elif objective == "kto":
        arguments.append(Arg("loss_type", settings["loss_type"]))
    elif objective == "simpo":
        arguments += [
            Arg("loss_type", "simpo"),
            Arg("simpo_gamma", settings["simpo_gamma"]),
            Arg("cpo_alpha", 0.0, "SimPO alone: CPO's behaviour-cloning term off"),
        ]
    for key in ("label_smoothing", "desirable_weight", "undesirable_weight"):
        if key in settings:
            arguments.append(Arg(key, settings[key]))
    arguments.append(Arg("max_length", cfg["dataset"]["preprocessing"]["max_length"],
                         "prompt and completion together, as dataset.preprocessing.max_length"))  # fmt: skip
    return PreferencePlan(
        objective=objective,
        module=tuple(module.split(".")),
        config_class=config_class,
        trainer_class=TRAINERS[objective],
        arguments=tuple(arguments),
        paired=objective in PAIRED_ONLY,
        reference=derived["preference_reference"],
    )


def preference_requirements() -> tuple[str, ...]:
    """What a preference bundle adds: TRL, pinned as lfm tests it."""
    return (constraints()["trl"],)
