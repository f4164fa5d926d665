"""The sweep's part of the plan: what sweep.py writes as Optuna calls, every value final."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from .methods import Arg
from .plan_preference import CONFIGS as PREFERENCE_CONFIGS
from .rules.sweep import EMBEDDED_STORAGE, EVAL_LOSS
from .rules.sweep_space import TRAINING_TARGETS, peft_attribute

# The sweep fields that decide what a stored trial means; with the rest of the config (data,
# model, training) they make the study's fingerprint. The others (n_trials, timeout,
# parallelism, sampler, pruner, seed) may change between runs of one study.
FINGERPRINTED = ("parameters", "objective", "direction")

# Optuna's own defaults where the config does not say (named here so sweep.py states them).
PRUNER_STARTUP_MAX = 5  # MedianPruner's n_startup_trials default
HALVING_REDUCTION = 3  # SuccessiveHalvingPruner: keep the best third at each rung


@dataclass(frozen=True)
class SweptParameter:
    path: str  # dotted, under model_config: also the parameter's name in the study
    suggest: str  # the optuna.Trial method: suggest_float, suggest_int, suggest_categorical
    args: tuple[Arg, ...]  # after the name: low and high (positional), or choices
    keywords: tuple[Arg, ...]  # step=, log=
    targets: tuple[tuple[str, str], ...]  # (class train.py builds, attribute set on it)


@dataclass(frozen=True)
class OptunaCall:
    """`optuna.<module>.<class_name>(arg=value, ...)`, as sweep.py writes it."""

    module: str  # "samplers" | "pruners"
    class_name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class SweepPlan:
    parameters: tuple[SweptParameter, ...]
    objective: str
    direction: str
    after_training: bool  # the objective is an evaluate.py score, measured after each trial
    n_trials: int
    timeout_s: float | None
    sampler: OptunaCall  # its seed is written apart: the seed plus the worker's index
    seed: int
    pruner: OptunaCall
    parallelism: int
    storage: str  # "sqlite", "journal" or a database URL
    study_name: str
    fingerprint: str  # of the resolved config, of the sweep FINGERPRINTED only: in the study

    @property
    def constant_liar(self) -> bool:
        """TPE's constant_liar, set when several workers share the study (at run time)."""
        return self.sampler.class_name == "TPESampler"

    @property
    def embedded_storage(self) -> bool:
        return self.storage in EMBEDDED_STORAGE


def sweep_plan(cfg: dict[str, Any], derived: dict[str, Any], method_class: str) -> SweepPlan:
    sweep = cfg["sweep"]
    swept = derived["sweep_parameters"]
    timeout = sweep.get("timeout_minutes")
    method = (str(cfg["fine_tuning"]["method"]), dict(cfg["fine_tuning"].get("parameters") or {}))
    objective = cfg["fine_tuning"].get("objective", "sft")
    return SweepPlan(
        parameters=tuple(
            _parameter(path, spec, method_class, method, objective) for path, spec in swept.items()
        ),
        objective=sweep["objective"],
        direction=sweep["direction"],
        after_training=sweep["objective"] != EVAL_LOSS,
        n_trials=sweep["n_trials"],
        timeout_s=None if timeout is None else float(timeout) * 60,
        sampler=_sampler(sweep, swept),
        seed=sweep["seed"],
        pruner=_pruner(sweep),
        parallelism=sweep["parallelism"],
        storage=sweep["storage"],
        study_name=sweep["study_name"],
        fingerprint=fingerprint(cfg),
    )


def fingerprint(cfg: dict[str, Any]) -> str:
    """What a stored study must have been made for (objective and direction included)."""
    sweep = {k: v for k, v in cfg["sweep"].items() if k in FINGERPRINTED}
    text = json.dumps({**cfg, "sweep": sweep}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _parameter(
    path: str,
    spec: dict[str, Any],
    method_class: str,
    method: tuple[str, dict[str, Any]],
    objective: str = "sft",
) -> SweptParameter:
    section, name = path.split(".")[-2:]
    if section == "training":
        targets = tuple(("TrainingArguments", attr) for attr in TRAINING_TARGETS[name])
    elif section == "preference":
        # TRL's config (DPOConfig, ...) takes each preference setting by the same name.
        targets = ((PREFERENCE_CONFIGS[objective][1], name),)
    else:
        # The PEFT config's own name for it (LoHa/LoKr: lora_alpha is `alpha`); the sweep
        # rules let through only parameters that have one.
        attribute = peft_attribute(method[0], method[1], name)
        assert attribute is not None, f"{path} reached the plan unsweepable"
        targets = ((method_class, attribute),)
    kind = spec["type"]
    if kind == "categorical":
        return SweptParameter(
            path, "suggest_categorical", (Arg("choices", list(spec["choices"])),), (), targets
        )
    keywords = []
    if "step" in spec:
        keywords.append(Arg("step", spec["step"]))
    if kind == "loguniform" or spec.get("log"):
        keywords.append(Arg("log", True))
    if kind == "int":
        bounds = (Arg("low", int(spec["low"])), Arg("high", int(spec["high"])))
        return SweptParameter(path, "suggest_int", bounds, tuple(keywords), targets)
    bounds = (Arg("low", float(spec["low"])), Arg("high", float(spec["high"])))
    return SweptParameter(path, "suggest_float", bounds, tuple(keywords), targets)


def _sampler(sweep: dict[str, Any], swept: dict[str, dict[str, Any]]) -> OptunaCall:
    kind = sweep["sampler"]
    if kind == "tpe":
        return OptunaCall(
            "samplers", "TPESampler", (Arg("n_startup_trials", sweep["startup_trials"]),)
        )
    if kind == "random":
        return OptunaCall("samplers", "RandomSampler", ())
    grid = {path: _grid_values(spec) for path, spec in swept.items()}
    return OptunaCall("samplers", "GridSampler", (Arg("search_space", grid),))


def _grid_values(spec: dict[str, Any]) -> list[Any]:
    if spec["type"] == "categorical":
        return list(spec["choices"])
    return list(range(int(spec["low"]), int(spec["high"]) + 1, int(spec.get("step", 1))))


def _pruner(sweep: dict[str, Any]) -> OptunaCall:
    warmup = sweep["prune_after_evaluations"]
    if sweep["pruner"] == "median":
        # Enough finished trials to make a median of, but pruning from early in a short sweep.
        startup = min(PRUNER_STARTUP_MAX, max(1, math.ceil(sweep["n_trials"] / 4)))
        args = (Arg("n_startup_trials", startup), Arg("n_warmup_steps", warmup))
        return OptunaCall("pruners", "MedianPruner", args)
    if sweep["pruner"] == "successive_halving":
        args = (
            Arg("min_resource", max(1, warmup)),
            Arg("reduction_factor", HALVING_REDUCTION),
        )
        return OptunaCall("pruners", "SuccessiveHalvingPruner", args)
    return OptunaCall("pruners", "NopPruner", ())
