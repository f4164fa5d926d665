"""Checkpoints that are never half there: written aside, then renamed into place.

transformers' Trainer writes ``checkpoint-N`` in place, file by file, so a run killed while
saving leaves a folder that looks like a checkpoint but is not one. :class:`Trainer` (the
same Trainer otherwise) writes each checkpoint under ``.staging/`` in the output directory and
renames the finished folder to ``checkpoint-N`` (an atomic rename on one filesystem), then
keeps the newest ``save_total_limit`` of them. A kill at any moment leaves either the
previous checkpoints alone or the new one complete; leftovers in ``.staging/`` are ignored
and cleared at the next save.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import transformers
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import loss_positions
from .metrics import MetricsCallback

STAGING = ".staging"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class Trainer(transformers.Trainer):
    """transformers' Trainer, saving each checkpoint to a temporary folder renamed into place."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        training_args = kwargs.get("args")
        if getattr(training_args, "use_liger_kernel", False):
            _require_liger()
        super().__init__(*args, **kwargs)
        # Callbacks run in list order: lfm's step metrics (tokens/s, token efficiency, memory)
        # join the log before the trackers' callbacks (TensorBoard, W&B, MLflow) record it.
        callbacks = self.callback_handler.callbacks
        ours = [callback for callback in callbacks if isinstance(callback, MetricsCallback)]
        callbacks[:] = ours + [callback for callback in callbacks if callback not in ours]
        self.add_callback(_BundleCadence())

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        # Batches from loss_positions.with_loss_positions: logits only where the loss reads them.
        positions = inputs.pop(loss_positions.LOSS_POSITIONS, None)
        if (
            positions is None
            or return_outputs
            or self.label_smoother
            # Liger's fused loss never builds the logits, but only when given the labels.
            or self.args.use_liger_kernel
            # transformers' DataParallel (n_gpu > 1) would split the positions across GPUs.
            or self.args.n_gpu > 1
        ):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = loss_positions.compute_loss(
            model,
            inputs,
            positions,
            self.accelerator.unwrap_model(model).loss_function,
            num_items_in_batch,
        )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # As transformers' compute_loss does: the count was summed over every process.
            loss = loss * self.accelerator.num_processes
        return loss

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        # Evaluation draws from the global random state (each DataLoader iterator takes a
        # seed from it); give it back untouched. Then training's randomness (dropout) does
        # not depend on when it evaluates, and a run resumed from a checkpoint saved just
        # before an epoch-end evaluation matches a run that was never stopped.
        with _random_state_kept():
            return super().evaluate(*args, **kwargs)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        # The checkpoint's optimizer holds the learning rate its schedule had reached: 0 at the
        # end of a finished linear or cosine run. A run resumed with a higher max_steps would
        # take its first step at that rate; take it from this run's schedule instead (the same
        # value when the schedule is unchanged).
        scheduler = self.lr_scheduler
        if checkpoint is None or not hasattr(scheduler, "lr_lambdas"):
            return
        step = scheduler.last_epoch
        rates = [
            base * rate(step)
            for base, rate in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        ]
        for group, rate in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        scheduler._last_lr = rates

    def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
        # A run restarted from its final checkpoint (killed after the last save, before its
        # outputs were written) has nothing left to train, but transformers would still run
        # one more step when max_steps does not end on an epoch boundary.
        if 0 < self.state.max_steps <= self.state.global_step:
            self.control.should_training_stop = True
            return None
        return super()._run_epoch(*args, **kwargs)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        run_dir = Path(self._get_output_dir(trial=trial))
        staging = run_dir / STAGING
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)  # a killed save's leftovers
        self.accelerator.wait_for_everyone()
        # Every process (DeepSpeed shards, FSDP) writes into the staging folder...
        self._get_output_dir = lambda trial=None: str(staging)  # type: ignore[method-assign]
        try:
            super()._save_checkpoint(model, trial)
        finally:
            del self._get_output_dir  # back to the class's method
        self.accelerator.wait_for_everyone()
        # ...and once all have finished, the main process renames it into place.
        if self.args.should_save:
            publish(staging / name, run_dir / name)
            with contextlib.suppress(OSError):  # empty now: leave no trace of it
                staging.rmdir()
            rotate(run_dir, self.args.save_total_limit)
        self.accelerator.wait_for_everyone()


class _BundleCadence(transformers.TrainerCallback):
    """A resumed run logs, evaluates and saves as its bundle says, not as its checkpoint did.

    transformers restores logging, eval and save steps from the checkpoint's trainer state and
    keeps them for good (each later checkpoint saves them again), so a recompiled config's
    new cadence would never apply.
    """

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        state.compute_steps(args, state.max_steps)


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Python's, numpy's and torch's random states (CPU and the current GPU) restored after."""
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def _require_liger() -> None:
    import importlib.util

    from .errors import RuntimeConfigError

    if importlib.util.find_spec("liger_kernel") is None:
        raise RuntimeConfigError(
            "fine_tuning.training.liger_kernels is true but the liger-kernel package is not "
            "installed: pip install liger-kernel (CUDA GPUs), or set liger_kernels to false"
        )


def publish(staged: Path, final: Path) -> None:
    """Rename a finished checkpoint into place; the folder and its parent are synced first."""
    _fsync_tree(staged)
    if final.exists():  # the same step saved again (a resumed run): replace it whole
        old = final.with_name(f"{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)
    _fsync_dir(final.parent)


def rotate(run_dir: Path, keep: int | None) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (by step); returns what was deleted."""
    if not keep:
        return []
    checkpoints = sorted(
        (int(match.group(1)), path)
        for path in run_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    )
    doomed = [path for _, path in checkpoints[:-keep]]
    for path in doomed:
        # Rename first, so a kill mid-delete never leaves a half-deleted checkpoint-N.
        trash = path.with_name(f".deleting-{path.name}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory
    finally:
        os.close(fd)
