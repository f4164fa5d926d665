"""The terminal display of a training run: a rich progress bar, or one line per log.

On a terminal, a live bar shows the step, loss, learning rate, tokens per second and time
left; elsewhere (CI logs, files) each log becomes one plain line. Only the main process draws.
"""

from __future__ import annotations

import sys
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback


def show_progress(trainer: Any, *, live: bool | None = None) -> None:
    """Replace the Trainer's tqdm bar and log printer with :class:`RichProgressCallback`."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(RichProgressCallback(live=sys.stderr.isatty() if live is None else live))


class RichProgressCallback(TrainerCallback):
    def __init__(self, *, live: bool) -> None:
        self.live = live
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train[/bold]"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=state.max_steps, completed=state.global_step, status=""
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        status = _status(logs)
        if self._progress is not None:
            self._progress.update(self._task, status=status)
        elif status:
            print(f"[lfm] step {state.global_step}/{state.max_steps} {status}", flush=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)
            self._progress.stop()
            self._progress = None


def _status(logs: dict[str, Any]) -> str:
    parts = []
    for key, label, fmt in (
        ("loss", "loss", "{:.4f}"),
        ("eval_loss", "eval_loss", "{:.4f}"),
        ("learning_rate", "lr", "{:.2e}"),
        ("grad_norm", "grad_norm", "{:.3f}"),
        ("tokens_per_second", "tok/s", "{:,.0f}"),  # added by metrics.MetricsCallback
    ):
        value = logs.get(key)
        if isinstance(value, int | float):
            parts.append(f"{label} {fmt.format(value)}")
    return "  ".join(parts)
