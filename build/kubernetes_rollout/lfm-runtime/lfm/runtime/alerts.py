"""Training alerts: a NaN or too-high loss, a diverging loss, evaluation results getting worse.

Checks run on every log (training loss) and every evaluation (eval metrics), on every
process: the Trainer logs the loss averaged over all of them, so all decide alike and, with
``action="stop"``, stop at the same step (a rank that kept training would wait forever for the
others). The main process delivers: an alert is logged (the run's log, stderr), appended to
``alerts.jsonl`` in the output directory and, when a webhook URL is given (``webhook_url``, or
``LFM_ALERT_WEBHOOK_URL`` in the environment: compiled bundles never hold it), POSTed there as
JSON. With ``action="stop"`` the Trainer then saves a checkpoint and stops, and
:meth:`AlertCallback.raise_if_stopped` (called by ``save_outputs`` once the outputs are saved)
records the stop in ``metrics.json`` and raises :class:`StoppedByAlert`, so ``train.py``
exits non-zero with one line saying why.

- NaN or infinite loss: always, at once (after warmup or not: nothing recovers from it).
- ``loss_threshold``: the loss averaged over the last ``WINDOW`` logs after warmup is above it
  (checked once ``WINDOW`` losses have been logged since warmup: one noisy log is not a trend).
- ``divergence_factor``: that average exceeds its lowest value since warmup by this factor.
- ``quality_degradation``: an eval result is worse than its best so far by more than this
  fraction (``eval_loss`` rising; any other ``eval_*`` metric falling).

Each condition alerts once when it becomes true and again only after it has cleared. A resumed
run replays the restored ``log_history`` first (silently), so its window, lowest average and
best eval results are those of a run that was never interrupted; with ``action="warn"`` an
alert already sent is not sent again, with ``action="stop"`` a condition still true stops the
resumed run again at its first log. A rerun after a stop at the last step, with nothing left to
train, fails again with the recorded stop while the restored history still trips that alert.
"""

from __future__ import annotations

import json
import logging
import math
import os
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .endpoints import WEBHOOK_ENV
from .errors import RuntimeConfigError
from .metrics import METRICS_FILE, write_json_atomic

logger = logging.getLogger("lfm.alerts")

PathLike = str | os.PathLike[str]
ALERTS_FILE = "alerts.jsonl"
WINDOW = 10
ACTIONS = ("warn", "stop")
_LOWER_IS_BETTER = ("loss", "perplexity")
_SKIPPED_EVAL_KEYS = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch")


class StoppedByAlert(RuntimeConfigError):
    """An alert with ``action: stop`` ended training early (train.py prints it and exits 1)."""


class AlertCallback(TrainerCallback):
    def __init__(
        self,
        output_dir: PathLike,
        *,
        run_name: str = "",
        loss_threshold: float | None = None,
        divergence_factor: float | None = 2.0,
        quality_degradation: float | None = None,
        webhook_url: str | None = None,
        action: str = "warn",
        timeout: float = 5.0,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"alert action {action!r} is not one of {', '.join(ACTIONS)}")
        self.output_dir = Path(output_dir)
        self.run_name = run_name
        self.loss_threshold = loss_threshold
        self.divergence_factor = divergence_factor
        self.quality_degradation = quality_degradation
        # A webhook URL is a credential: a compiled train.py never holds it, the environment does.
        self.webhook_url = webhook_url or os.environ.get(WEBHOOK_ENV) or None
        self.action = action
        self.timeout = timeout
        self._losses: deque[float] = deque(maxlen=WINDOW)
        self._lowest_mean: float | None = None
        self._best_eval: dict[str, float] = {}
        self._active: set[str] = set()
        self._deliver = True  # alerts are delivered by the main process only
        self.sent: list[dict[str, Any]] = []  # every alert raised (on every process)
        self.stopped: dict[str, Any] | None = None  # the alert that stopped training, if any
        self._step_at_start: int | None = None  # global_step when this session began
        self._held: set[str] = set()  # conditions still true in the restored history

    # ---- Trainer hooks --------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer restores a checkpoint's log_history before this hook: replay it so a
        # resumed run judges its next log against the same window and bests as before.
        self._losses.clear()
        self._lowest_mean = None
        self._best_eval.clear()
        self._active.clear()
        self.stopped = None
        self._step_at_start = state.global_step
        for entry in state.log_history:  # control=None: a replay raises nothing, only records
            step = int(entry.get("step", 0))
            if "loss" in entry:
                self._check_loss(float(entry["loss"]), step, args, state, None)
            metrics = {k: v for k, v in entry.items() if k.startswith("eval_")}
            if metrics:
                self._check_evals(metrics, step, None)
        self._held = set(self._active)  # what the history says still holds, for a rerun
        if self.action == "stop":
            self._active.clear()  # still true after a stop: stop again rather than train on

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not logs or "loss" not in logs:
            return
        self._deliver = state.is_world_process_zero
        self._check_loss(float(logs["loss"]), state.global_step, args, state, control)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        if not metrics:
            return
        self._deliver = state.is_world_process_zero
        self._check_evals(metrics, state.global_step, control, state.max_steps)

    # ---- Checks ---------------------------------------------------------------------------
    def _check_loss(self, loss: float, step: int, args: Any, state: Any, control: Any) -> None:
        if not math.isfinite(loss):
            message = f"training loss is {loss} at step {step}"
            self._raise_once("loss_nan", step, message, control, state.max_steps)
            return
        self._clear("loss_nan")
        if step <= _warmup_steps(args, state):
            return
        self._losses.append(loss)
        if len(self._losses) < WINDOW:
            return  # both checks judge a full window, never a log or two
        mean = sum(self._losses) / len(self._losses)
        self._check_threshold(mean, step, control, state.max_steps)
        self._check_divergence(mean, step, control, state.max_steps)

    def _check_evals(
        self, metrics: dict[str, Any], step: int, control: Any, max_steps: int = 0
    ) -> None:
        if self.quality_degradation is None:
            return
        for name, value in metrics.items():
            if name in _SKIPPED_EVAL_KEYS or not isinstance(value, int | float):
                continue
            self._check_eval(name, float(value), step, control, max_steps)

    def _check_threshold(self, mean: float, step: int, control: Any, max_steps: int) -> None:
        if self.loss_threshold is None:
            return
        if mean > self.loss_threshold:
            message = (
                f"training loss {mean:.4g} (mean of the last {len(self._losses)} logs) is above "
                f"loss_threshold {self.loss_threshold:g} at step {step}"
            )
            self._raise_once("loss_threshold", step, message, control, max_steps, mean)
        else:
            self._clear("loss_threshold")

    def _check_divergence(self, mean: float, step: int, control: Any, max_steps: int) -> None:
        if self.divergence_factor is None:
            return
        if self._lowest_mean is None or mean < self._lowest_mean:
            self._lowest_mean = mean
        if mean > self._lowest_mean * self.divergence_factor:
            message = (
                f"training loss is diverging: {mean:.4g} (mean of the last {WINDOW} logs) is more "
                f"than {self.divergence_factor:g}x its lowest, {self._lowest_mean:.4g}, at step {step}"
            )
            self._raise_once("divergence", step, message, control, max_steps, mean)
        else:
            self._clear("divergence")

    def _check_eval(self, name: str, value: float, step: int, control: Any, max_steps: int) -> None:
        lower_better = any(word in name for word in _LOWER_IS_BETTER)
        best = self._best_eval.get(name)
        improved = best is None or (value < best if lower_better else value > best)
        if improved:
            self._best_eval[name] = value
            self._clear(f"quality:{name}")
            return
        assert best is not None and self.quality_degradation is not None
        change = (value - best) / abs(best) if best else 0.0
        worse = change if lower_better else -change
        if worse > self.quality_degradation:
            message = (
                f"{name} {value:.4g} at step {step} is {_percent(worse)} worse than its best, "
                f"{best:.4g} (quality_degradation {self.quality_degradation:g})"
            )
            self._raise_once(f"quality:{name}", step, message, control, max_steps, value)

    # ---- Delivery -------------------------------------------------------------------------
    def _raise_once(
        self,
        kind: str,
        step: int,
        message: str,
        control: Any,
        max_steps: int = 0,
        value: float | None = None,
    ) -> None:
        if kind in self._active:
            return
        self._active.add(kind)
        if control is None:  # replaying a resumed run's history: already alerted back then
            return
        alert = {
            "run": self.run_name,
            "alert": kind.split(":")[0],
            "metric": kind.split(":")[1] if ":" in kind else "loss",
            "step": step,
            "value": value if value is None or math.isfinite(value) else str(value),
            "message": message,
            "action": self.action,
            "text": f"[lfm] {self.run_name}: {message}",  # what Slack-style webhooks show
        }
        if self._deliver:
            logger.warning("ALERT %s", message)
            _append(self.output_dir / ALERTS_FILE, alert)
            if self.webhook_url:
                send_webhook(self.webhook_url, alert, self.timeout)
        self.sent.append(alert)
        if self.action == "stop":
            control.should_save = True
            control.should_training_stop = True
            if self.stopped is None:
                self.stopped = {
                    key: alert[key] for key in ("alert", "metric", "step", "value", "message")
                } | {"max_steps": max_steps}

    def _clear(self, kind: str) -> None:
        self._active.discard(kind)

    # ---- After training ---------------------------------------------------------------------
    @classmethod
    def raise_if_stopped(cls, trainer: Any, output_dir: PathLike) -> None:
        """Once the outputs are saved: when an alert stopped training, say so and fail.

        ``metrics.json`` gets a ``stopped_by_alert`` record and :class:`StoppedByAlert` is
        raised (on every process: they all stopped), so a script or CI job running train.py
        sees a non-zero exit status instead of a run that looks finished.
        """
        stop = next(
            (
                callback.stopped
                for callback in trainer.callback_handler.callbacks
                if isinstance(callback, cls) and callback.stopped
            ),
            None,
        )
        output_dir = Path(output_dir)
        if stop is None:
            stop = cls._stop_to_repeat(trainer, output_dir)
            if stop is None:
                return
            raise StoppedByAlert(_stopped_message(trainer, output_dir, stop))
        step = stop["step"]
        checkpoint = output_dir / f"checkpoint-{step}"
        if trainer.is_world_process_zero():
            summary_path = output_dir / METRICS_FILE
            summary = _read_json(summary_path)
            summary["stopped_by_alert"] = stop | {
                "checkpoint": checkpoint.name if checkpoint.is_dir() else None
            }
            write_json_atomic(summary_path, summary)
        raise StoppedByAlert(_stopped_message(trainer, output_dir, stop))

    @classmethod
    def _stop_to_repeat(cls, trainer: Any, output_dir: Path) -> dict[str, Any] | None:
        """The stop recorded in ``metrics.json`` when this rerun must fail with it again.

        A stop at the run's last step leaves a checkpoint at max_steps: a rerun resumes it,
        has nothing left to train, so no log is judged and nothing would stop it. Rather than
        pass (and let evaluation gate a model an alert stopped), it fails with the same line,
        when all of these hold: this session trained no step, ``metrics.json`` records a stop
        at the current step (the record, not a new judgement, so the line is the same one),
        the action is still ``stop`` and the restored history, judged with the current
        settings, still trips that alert (a user who switched to ``warn`` or raised the bound
        and recompiled is not stopped). A rerun that trains further is judged as it goes.
        """
        callback = next((c for c in trainer.callback_handler.callbacks if isinstance(c, cls)), None)
        if callback is None or callback.action != "stop" or callback._step_at_start is None:
            return None
        step = trainer.state.global_step
        if step != callback._step_at_start:
            return None  # this session trained: its own logs were judged
        stop = _read_json(Path(output_dir) / METRICS_FILE).get("stopped_by_alert")
        if not isinstance(stop, dict) or stop.get("step") != step:
            return None
        kind = stop.get("alert", "")
        if kind == "quality":
            kind = f"quality:{stop.get('metric', '')}"
        return stop if kind in callback._held else None


def _stopped_message(trainer: Any, output_dir: Path, stop: dict[str, Any]) -> str:
    """train.py's one line for a run an alert stopped."""
    step = stop["step"]
    checkpoint = output_dir / f"checkpoint-{step}"
    artifact = "adapter" if getattr(trainer.model, "peft_config", None) else "model"
    where = f"{_shown(output_dir)}/"
    if checkpoint.is_dir():
        saved = (
            f"the step-{step} checkpoint and {artifact} are in {where}; running train.py "
            "again resumes from there (and stops again while the alert holds)"
        )
    else:
        saved = f"the {artifact} is in {where}"
    of_steps = f" of {stop['max_steps']}" if stop.get("max_steps") else ""
    return (
        f"training stopped at step {step}{of_steps} by the {stop['alert']} alert: "
        f"{stop['message']}; {saved}"
    )


def send_webhook(url: str, payload: dict[str, Any], timeout: float = 5.0) -> bool:
    """POST ``payload`` as JSON; a failure is logged, never raised (training goes on)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "lfm-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only, checked by the schema)
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("could not send the alert to the webhook: %s", exc)
        return False


def _warmup_steps(args: Any, state: Any) -> int:
    getter = getattr(args, "get_warmup_steps", None)
    if callable(getter) and state.max_steps:
        return int(getter(state.max_steps))
    return int(getattr(args, "warmup_steps", 0) or 0)


def _percent(fraction: float) -> str:
    """``fraction`` as a percentage with two significant digits below 1% (0.037%, not 0.0%)."""
    percent = fraction * 100
    if not 0 < percent < 1:
        return f"{percent:.1f}%"
    return f"{percent:.{1 - math.floor(math.log10(percent))}f}%"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
