"""A trial's values set on the objects train.py builds: every sweepable parameter, every PEFT
config a method builds, by the attribute the compiler plans for it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from lfm.compiler.methods import METHODS  # noqa: E402
from lfm.compiler.methods.base import Code  # noqa: E402
from lfm.compiler.rules.sweep_space import (  # noqa: E402
    TRAINING_TARGETS,
    peft_attribute,
    schema_node,
    sweepable,
)
from lfm.runtime.errors import RuntimeConfigError  # noqa: E402
from lfm.runtime.trials import TrialRun  # noqa: E402

# Every single-adapter method, and each adapter_type of `adapters`.
CASES = [
    (name, {"target_modules": ["q_proj"]})
    for name, method in METHODS.items()
    if name not in ("adapters", "hybrid_lora_adapter", "full")
] + [
    ("adapters", {"adapter_type": kind, "target_modules": ["q_proj"]})
    for kind in ("ia3", "loha", "lokr", "oft")
]


def a_value(path: tuple[str, ...]) -> Any:
    node = schema_node(path) or {}
    if node.get("type") == "integer":
        return 3
    return 0.125


def trial_run(tmp_path: Path, path: str, value: Any, targets: Any) -> TrialRun:
    trial = SimpleNamespace(number=0)
    return TrialRun(trial, {path: value}, {path: targets}, tmp_path, objective="eval_loss")


def built(method: str, params: dict[str, Any]) -> Any:
    (adapter,) = METHODS[method].build(params)
    args = {a.name: a.value for a in adapter.config.args if not isinstance(a.value, Code)}
    return getattr(peft, adapter.config.class_name)(**args)


@pytest.mark.parametrize(("method", "params"), CASES, ids=lambda c: str(c))
def test_each_swept_method_parameter_lands_on_the_peft_config(
    tmp_path: Path, method: str, params: dict[str, Any]
) -> None:
    swept = [p for p in sweepable(method, params) if p[1] == "parameters"]
    for path in swept:
        attribute = peft_attribute(method, params, path[-1])
        assert attribute is not None
        config = built(method, params)
        value = a_value(path)
        dotted = ".".join(path)
        run = trial_run(tmp_path, dotted, value, ((type(config).__name__, attribute),))
        run.configure(config)
        assert getattr(config, attribute) == value, (method, dotted, attribute)


def test_what_each_adapter_type_offers() -> None:
    def offered(kind: str) -> set[str]:
        params = {"adapter_type": kind}
        return {p[-1] for p in sweepable("adapters", params) if p[1] == "parameters"}

    assert offered("ia3") == set()
    assert offered("loha") == offered("lokr") == {"r", "lora_alpha", "module_dropout"}
    assert offered("oft") == {"oft_block_size", "module_dropout"}
    assert peft_attribute("adapters", {"adapter_type": "loha"}, "lora_alpha") == "alpha"


def test_each_training_parameter_lands_on_the_training_arguments(tmp_path: Path) -> None:
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    for name, attributes in TRAINING_TARGETS.items():
        path = ("fine_tuning", "training", name)
        value = "cosine" if name == "lr_scheduler" else a_value(path)
        run = trial_run(
            tmp_path, ".".join(path), value, tuple(("TrainingArguments", a) for a in attributes)
        )
        run.configure(args)
        for attribute in attributes:
            assert getattr(args, attribute) == value, name
    assert args.save_strategy == "no"  # a trial keeps no checkpoints


def test_an_attribute_the_config_does_not_have_is_an_error(tmp_path: Path) -> None:
    config = peft.LoHaConfig(r=4, target_modules=["q_proj"])
    run = trial_run(
        tmp_path, "fine_tuning.parameters.lora_alpha", 32, (("LoHaConfig", "lora_alpha"),)
    )
    with pytest.raises(RuntimeConfigError, match="LoHaConfig: it has no field 'lora_alpha'"):
        run.configure(config)


class _Pruning:
    """An Optuna trial whose pruner always says prune."""

    number = 3

    def __init__(self) -> None:
        self.reported: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reported.append((value, step))

    def should_prune(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("step", "max_steps", "pruned"), [(2, 6, True), (6, 6, False), (9, 6, False)]
)
def test_an_evaluation_at_the_last_step_is_never_pruned(
    step: int, max_steps: int, pruned: bool
) -> None:
    """Pruning saves the training still to come; at the last (or only) evaluation there is
    none, so the trial is complete with that evaluation's loss, not reported as pruned."""
    from lfm.runtime.trials import PruningCallback

    trial = _Pruning()
    callback = PruningCallback(trial)
    state = SimpleNamespace(global_step=step, max_steps=max_steps)
    control = SimpleNamespace(should_training_stop=False)
    callback.on_evaluate(None, state, control, metrics={"eval_loss": 0.5})
    assert trial.reported == [(0.5, 1)]  # reported to the study either way
    assert (callback.pruned_at is not None) is pruned
    assert control.should_training_stop is pruned
