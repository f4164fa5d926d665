"""One sweep trial as train.py sees it: its values, its folder, its pruning callback.

A bundle with a sweep has ``train.main(trial=AS_WRITTEN)``. Run as ``python train.py`` it trains
exactly what the config says; sweep.py calls ``main(TrialRun(...))`` instead, and the same code
then trains with the trial's values in the trial's own folder. The values are set as attributes
on the objects train.py builds (TrainingArguments, the PEFT config) before training starts,
the way transformers' own ``Trainer.hyperparameter_search`` sets a trial's values on ``args``.

Optuna is imported only by a trial: a plain run of train.py does not need it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .errors import RuntimeConfigError
from .launch import announce

TRIAL_FILE = "trial.json"
EVAL_LOSS = "eval_loss"
Targets = Mapping[str, tuple[tuple[str, str], ...]]


class AsWritten:
    """No trial: train.py's values and output folder, as compiled."""

    active = False

    def output_dir(self, default: Path) -> Path:
        return default

    def configure(self, built: Any) -> Any:
        return built

    def callbacks(self) -> list[Any]:
        return []

    def finish(self, trainer: Any) -> None:
        return None


AS_WRITTEN = AsWritten()


class TrialRun(AsWritten):
    """An Optuna trial's values applied to train.py's objects; its result after training."""

    active = True

    def __init__(
        self,
        trial: Any,
        values: Mapping[str, Any],
        targets: Targets,
        sweep_dir: Path,
        *,
        objective: str,
    ) -> None:
        self.trial = trial
        self.values = dict(values)
        self.targets = targets
        self.folder = Path(sweep_dir) / f"trial-{trial.number:04d}"
        self.objective = objective
        self.value: float | None = None
        self.pruning = PruningCallback(trial)
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"number": trial.number, "values": self.values}
        (self.folder / TRIAL_FILE).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        shown = ", ".join(f"{path.rsplit('.', 1)[-1]}={_short(v)}" for path, v in values.items())
        announce(f"trial {trial.number}: {shown}")

    def output_dir(self, default: Path) -> Path:
        return self.folder

    def configure(self, built: Any) -> Any:
        """Set this trial's values on ``built`` (TrainingArguments or a PEFT config)."""
        names = {cls.__name__ for cls in type(built).__mro__}
        fields = (
            {f.name for f in dataclasses.fields(built)}
            if dataclasses.is_dataclass(built)
            else set()
        )
        for path, value in self.values.items():
            for class_name, attribute in self.targets.get(path, ()):
                if class_name not in names:
                    continue
                if attribute not in fields:
                    # setattr would add an attribute nothing reads: the trial would train the
                    # config's value while the study records the swept one.
                    raise RuntimeConfigError(
                        f"{path} cannot be set on {type(built).__name__}: it has no field "
                        f"{attribute!r} (compile the config again with this lfm)"
                    )
                setattr(built, attribute, value)
        if "TrainingArguments" in names:
            # A retried trial starts over, so checkpoints would only cost disk: one per trial.
            built.save_strategy = type(built.save_strategy)("no")
        return built

    def callbacks(self) -> list[Any]:
        return [self.pruning]

    def finish(self, trainer: Any) -> None:
        """Stop here if the pruner stopped training; else record the trial's eval_loss (when
        it is the objective, or there is a holdout split to measure it on)."""
        import optuna

        if self.pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at evaluation {self.pruning.pruned_at}")
        # The pruner has seen every evaluation during training; the one below is not a step.
        self.pruning.closed = True
        if self.objective != EVAL_LOSS and trainer.eval_dataset is None:
            return  # the objective is an evaluate.py score, on its own test set
        last = self.pruning.last
        if last is None or last[0] != trainer.state.global_step:
            # The last evaluation was before the last step (or there was none): measure now.
            last = (trainer.state.global_step, trainer.evaluate()["eval_loss"])
        loss = float(last[1])
        if self.objective != EVAL_LOSS:
            self.trial.set_user_attr(EVAL_LOSS, loss)  # shown beside the objective
            return
        self.value = loss
        if math.isnan(self.value):
            raise FloatingPointError("eval_loss is NaN: training diverged")


class PruningCallback(TrainerCallback):
    """Report each evaluation's eval_loss to the trial; stop training when Optuna prunes it.

    Steps are counted in evaluations (1, 2, ...): evaluation k comes after k * eval_steps
    optimizer steps in every trial. Trials that sweep batch_size or gradient accumulation have
    then seen different numbers of examples at the same step, so the pruner compares them at
    the same number of updates, not the same amount of data."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.evaluations = 0
        self.last: tuple[int, float] | None = None  # (global step, eval_loss)
        self.pruned_at: int | None = None
        self.closed = False  # training is over: finish()'s own evaluation is not reported

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None or self.pruned_at is not None or self.closed:
            return
        self.evaluations += 1
        self.last = (state.global_step, float(loss))
        self.trial.report(float(loss), self.evaluations)
        # At the last step there is no training left to save: the trial is complete, its
        # value this evaluation's, whatever the pruner would say.
        finished = state.max_steps > 0 and state.global_step >= state.max_steps
        if not finished and self.trial.should_prune():
            self.pruned_at = self.evaluations
            announce(
                f"trial {self.trial.number} pruned at evaluation {self.evaluations} "
                f"(step {state.global_step}, eval_loss {loss:.4f})"
            )
            control.should_training_stop = True


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
