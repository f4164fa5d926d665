"""Training alerts: a NaN or too-high loss, a diverging loss, evaluation results getting worse.

Checks run on every log (training loss) and every evaluation (eval metrics), on the main
process. An alert is logged (the run's log, stderr), appended to ``alerts.jsonl`` in the
output directory and, when a webhook URL is configured, POSTed there as JSON. With
``action="stop"`` the Trainer then saves a checkpoint and stops.

- NaN or infinite loss: always (after warmup or not: nothing recovers from it).
- ``loss_threshold``: the loss averaged over the last ``WINDOW`` logs is above it, after warmup.
- ``divergence_factor``: that average exceeds its lowest value since warmup by this factor.
- ``quality_degradation``: an eval result is worse than its best so far by more than this
  fraction (``eval_loss`` rising; any other ``eval_*`` metric falling).

Each condition alerts once when it becomes true and again only after it has cleared.
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

logger = logging.getLogger("lfm.alerts")

PathLike = str | os.PathLike[str]
ALERTS_FILE = "alerts.jsonl"
WINDOW = 10
ACTIONS = ("warn", "stop")
_LOWER_IS_BETTER = ("loss", "perplexity")
_SKIPPED_EVAL_KEYS = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch")


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
        self.webhook_url = webhook_url
        self.action = action
        self.timeout = timeout
        self._losses: deque[float] = deque(maxlen=WINDOW)
        self._lowest_mean: float | None = None
        self._best_eval: dict[str, float] = {}
        self._active: set[str] = set()
        self.sent: list[dict[str, Any]] = []

    # ---- Trainer hooks --------------------------------------------------------------------
    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        step = state.global_step
        if not math.isfinite(loss):
            self._raise_once("loss_nan", step, f"training loss is {loss} at step {step}", control)
            return
        self._clear("loss_nan")
        if step <= _warmup_steps(args, state):
            return
        self._losses.append(loss)
        mean = sum(self._losses) / len(self._losses)
        self._check_threshold(mean, step, control)
        self._check_divergence(mean, step, control)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not metrics or self.quality_degradation is None:
            return
        for name, value in metrics.items():
            if name in _SKIPPED_EVAL_KEYS or not isinstance(value, int | float):
                continue
            self._check_eval(name, float(value), state.global_step, control)

    # ---- Checks ---------------------------------------------------------------------------
    def _check_threshold(self, mean: float, step: int, control: Any) -> None:
        if self.loss_threshold is None:
            return
        if mean > self.loss_threshold:
            message = (
                f"training loss {mean:.4g} (mean of the last {len(self._losses)} logs) is above "
                f"loss_threshold {self.loss_threshold:g} at step {step}"
            )
            self._raise_once("loss_threshold", step, message, control, value=mean)
        else:
            self._clear("loss_threshold")

    def _check_divergence(self, mean: float, step: int, control: Any) -> None:
        if self.divergence_factor is None or len(self._losses) < self._losses.maxlen:  # type: ignore[operator]
            return
        if self._lowest_mean is None or mean < self._lowest_mean:
            self._lowest_mean = mean
        if mean > self._lowest_mean * self.divergence_factor:
            message = (
                f"training loss is diverging: {mean:.4g} (mean of the last {WINDOW} logs) is more "
                f"than {self.divergence_factor:g}x its lowest, {self._lowest_mean:.4g}, at step {step}"
            )
            self._raise_once("divergence", step, message, control, value=mean)
        else:
            self._clear("divergence")

    def _check_eval(self, name: str, value: float, step: int, control: Any) -> None:
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
                f"{name} {value:.4g} at step {step} is {worse:.1%} worse than its best, "
                f"{best:.4g} (quality_degradation {self.quality_degradation:g})"
            )
            self._raise_once(f"quality:{name}", step, message, control, value=value)

    # ---- Delivery -------------------------------------------------------------------------
    def _raise_once(
        self, kind: str, step: int, message: str, control: Any, value: float | None = None
    ) -> None:
        if kind in self._active:
            return
        self._active.add(kind)
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
        logger.warning("ALERT %s", message)
        _append(self.output_dir / ALERTS_FILE, alert)
        if self.webhook_url:
            send_webhook(self.webhook_url, alert, self.timeout)
        self.sent.append(alert)
        if self.action == "stop":
            control.should_save = True
            control.should_training_stop = True

    def _clear(self, kind: str) -> None:
        self._active.discard(kind)


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


def _append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
