"""Alerts: NaN and threshold, divergence, quality degradation; delivered to a real HTTP server.

Also: the windowed checks wait for a full window, a resumed run carries on from its restored
log history, and a stop ends train.py with an error and a record in metrics.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lfm.runtime.alerts import ALERTS_FILE, AlertCallback, StoppedByAlert
from lfm.runtime.errors import RuntimeConfigError
from loopback import QuietHandler, http_server
from transformers import TrainerControl, TrainerState, TrainingArguments


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on loopback recording the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "type": self.headers["Content-Type"], **json.loads(body)}
            )
            self.send_response(204)
            self.end_headers()

    with http_server(Handler) as url:
        yield f"{url}/hooks/lfm", received


def _feed(
    callback: AlertCallback,
    losses: list[float],
    tmp_path: Path,
    warmup: int = 0,
    *,
    state: TrainerState | None = None,
    first_step: int = 1,
) -> Any:
    """Log ``losses`` at steps ``first_step``... as the Trainer does (log_history, then on_log)."""
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=warmup, report_to="none")
    state = state or TrainerState()
    control = TrainerControl()
    state.max_steps = 1000
    for step, loss in enumerate(losses, start=first_step):
        state.global_step = step
        state.log_history.append({"loss": loss, "step": step})
        callback.on_log(args, state, control, logs={"loss": loss})
    return control


def _resume(
    callback: AlertCallback, history: list[dict[str, Any]], tmp_path: Path, warmup: int = 0
) -> TrainerState:
    """What the Trainer does on resume: restore the checkpoint's state, then on_train_begin."""
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=warmup, report_to="none")
    state = TrainerState(max_steps=1000, global_step=history[-1]["step"])
    state.log_history = [dict(entry) for entry in history]
    callback.on_train_begin(args, state, TrainerControl())
    return state


def test_nan_loss_alerts_once_and_reaches_the_webhook(tmp_path: Path, webhook) -> None:
    url, received = webhook
    callback = AlertCallback(tmp_path, run_name="demo", webhook_url=url)
    _feed(callback, [2.0, float("nan"), float("nan"), 1.5], tmp_path)
    assert [a["alert"] for a in callback.sent] == ["loss_nan"]
    [posted] = received
    assert posted["path"] == "/hooks/lfm" and posted["type"] == "application/json"
    assert posted["alert"] == "loss_nan" and posted["step"] == 2 and posted["run"] == "demo"
    assert "training loss is nan" in posted["text"]
    lines = (tmp_path / ALERTS_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["alert"] for line in lines] == ["loss_nan"]


def test_a_compiled_run_takes_the_webhook_from_the_environment(
    tmp_path: Path, webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.py never holds the URL (a credential); `lfm train` or the pod's Secret sets it."""
    url, received = webhook
    monkeypatch.setenv("LFM_ALERT_WEBHOOK_URL", url)
    callback = AlertCallback(tmp_path, run_name="demo")
    _feed(callback, [2.0, float("nan")], tmp_path)
    assert [posted["alert"] for posted in received] == ["loss_nan"]


def test_loss_threshold_only_after_warmup_and_rearms(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=1.0, divergence_factor=None)
    # Warmup (5 steps) at 9.0 is ignored; then above the bound, back under, above again.
    _feed(callback, [9.0] * 5 + [3.0] * 10 + [0.1] * 30 + [5.0] * 10, tmp_path, warmup=5)
    assert [(a["alert"], a["step"]) for a in callback.sent] == [
        ("loss_threshold", 15),  # the first full window after warmup
        ("loss_threshold", 47),  # the 10-log mean crosses 1.0 at the 2nd 5.0
    ]


def test_loss_threshold_waits_for_a_full_window(tmp_path: Path) -> None:
    """One log above the bound right after warmup is not a mean of the last 10 logs."""
    callback = AlertCallback(tmp_path, loss_threshold=5.5, divergence_factor=None, action="stop")
    control = _feed(callback, [6.0] * 3 + [5.987] * 9, tmp_path, warmup=3)
    assert callback.sent == [] and not control.should_training_stop
    control = _feed(callback, [5.987], tmp_path, state=TrainerState(), first_step=13)
    [alert] = callback.sent
    assert alert["step"] == 13 and "mean of the last 10 logs" in alert["message"]
    assert control.should_training_stop


def test_a_nan_loss_alerts_at_once_even_in_warmup(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=5.5)
    _feed(callback, [1.0, float("inf")], tmp_path, warmup=5)
    assert [(a["alert"], a["step"]) for a in callback.sent] == [("loss_nan", 2)]


def test_divergence(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, divergence_factor=2.0)
    _feed(callback, [1.0] * 20 + [1.5] * 10, tmp_path)
    assert callback.sent == []  # 1.5x its lowest: not diverging yet
    _feed(callback, [1.0] * 20 + [4.0] * 10, tmp_path)
    [alert] = callback.sent
    assert alert["alert"] == "divergence" and "diverging" in alert["message"]


def test_action_stop_asks_the_trainer_to_save_and_stop(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=0.5, action="stop")
    control = _feed(callback, [2.0] * 10, tmp_path)
    assert control.should_training_stop and control.should_save
    assert callback.stopped is not None
    assert callback.stopped["alert"] == "loss_threshold" and callback.stopped["step"] == 10
    assert callback.stopped["max_steps"] == 1000


def test_every_process_stops_but_only_the_main_one_delivers(tmp_path: Path, webhook) -> None:
    """The logged loss is the mean over all processes: each must stop at the same step."""
    url, received = webhook
    callback = AlertCallback(tmp_path, loss_threshold=0.5, action="stop", webhook_url=url)
    state = TrainerState()
    state.is_world_process_zero = False
    control = _feed(callback, [2.0] * 10, tmp_path, state=state)
    assert control.should_training_stop and control.should_save
    assert received == [] and not (tmp_path / ALERTS_FILE).exists()


def _uninterrupted_and_resumed(
    tmp_path: Path, losses: list[float], resume_at: int, **settings: Any
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Alerts (kind, step) of one run, and of the same run resumed after step ``resume_at``."""
    whole = AlertCallback(tmp_path / "whole", **settings)
    state = TrainerState()
    _feed(whole, losses, tmp_path, warmup=2, state=state)
    first = AlertCallback(tmp_path / "first", **settings)
    _feed(first, losses[:resume_at], tmp_path, warmup=2)
    resumed = AlertCallback(tmp_path / "resumed", **settings)
    restored = _resume(resumed, state.log_history[:resume_at], tmp_path, warmup=2)
    _feed(resumed, losses[resume_at:], tmp_path, warmup=2, state=restored, first_step=resume_at + 1)
    both = [(a["alert"], a["step"]) for a in first.sent + resumed.sent]
    return [(a["alert"], a["step"]) for a in whole.sent], both


def test_a_resumed_run_alerts_as_an_uninterrupted_one(tmp_path: Path) -> None:
    # Threshold: the window spans the restart (fires at step 13, the first after resuming).
    losses = [9.0] * 2 + [1.0] * 8 + [3.0] * 20
    whole, resumed = _uninterrupted_and_resumed(
        tmp_path, losses, 12, loss_threshold=1.5, divergence_factor=None
    )
    assert whole == resumed == [("loss_threshold", 13)]
    # Divergence: the lowest mean since warmup survives the restart too.
    losses = [9.0] * 2 + [1.0] * 20 + [4.0] * 10
    whole, resumed = _uninterrupted_and_resumed(tmp_path, losses, 23, divergence_factor=2.0)
    assert whole == resumed == [("divergence", 26)]
    # An alert sent before the restart is not sent again (action: warn).
    losses = [9.0] * 2 + [3.0] * 20
    whole, resumed = _uninterrupted_and_resumed(tmp_path, losses, 15, loss_threshold=1.5)
    assert whole == resumed == [("loss_threshold", 12)]


def test_a_rerun_of_a_stopped_run_stops_again_while_the_alert_holds(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=1.5, action="stop")
    state = TrainerState()
    _feed(callback, [9.0] * 2 + [3.0] * 10, tmp_path, warmup=2, state=state)
    assert callback.stopped is not None and callback.stopped["step"] == 12
    rerun = AlertCallback(tmp_path, loss_threshold=1.5, action="stop")
    restored = _resume(rerun, state.log_history, tmp_path, warmup=2)
    assert rerun.stopped is None and rerun.sent == []  # replaying the history raises nothing
    control = _feed(rerun, [3.0], tmp_path, warmup=2, state=restored, first_step=13)
    assert control.should_training_stop and rerun.stopped and rerun.stopped["step"] == 13


def _trainer(
    callback: AlertCallback, *, peft: bool = True, state: TrainerState | None = None
) -> Any:
    """What raise_if_stopped reads of a Trainer."""
    return SimpleNamespace(
        callback_handler=SimpleNamespace(callbacks=[object(), callback]),
        state=state or TrainerState(),
        is_world_process_zero=lambda: True,
        model=SimpleNamespace(peft_config={"default": {}} if peft else None),
    )


def test_a_stopped_run_is_recorded_and_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "build" / "demo" / "output"
    (output / "checkpoint-12").mkdir(parents=True)
    (output / "metrics.json").write_text(json.dumps({"global_step": 12}), encoding="utf-8")
    callback = AlertCallback(output, loss_threshold=1.5, action="stop")
    _feed(callback, [9.0] * 2 + [3.0] * 10, tmp_path, warmup=2)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoppedByAlert) as raised:
        AlertCallback.raise_if_stopped(_trainer(callback), output)
    assert isinstance(raised.value, RuntimeConfigError)  # train.py: "error: ...", exit 1
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "training stopped at step 12 of 1000 by the loss_threshold alert: training loss 3 "
    )
    assert message.endswith(
        "; the step-12 checkpoint and adapter are in build/demo/output/; "
        "running train.py again resumes from there (and stops again while the alert holds)"
    )
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["global_step"] == 12  # the rest of the summary is kept
    stop = metrics["stopped_by_alert"]
    assert stop["alert"] == "loss_threshold" and stop["step"] == 12
    assert stop["checkpoint"] == "checkpoint-12" and stop["message"] in message


def test_a_run_no_alert_stopped_raises_nothing(tmp_path: Path) -> None:
    warned = AlertCallback(tmp_path, loss_threshold=1.5)  # action: warn
    _feed(warned, [3.0] * 10, tmp_path)
    assert warned.sent
    AlertCallback.raise_if_stopped(_trainer(warned), tmp_path)
    AlertCallback.raise_if_stopped(_trainer(AlertCallback(tmp_path, action="stop")), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_quality_degradation_against_evaluation_results(tmp_path: Path, webhook) -> None:
    url, received = webhook
    callback = AlertCallback(tmp_path, quality_degradation=0.1, webhook_url=url)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control = TrainerState(), TrainerControl()
    for step, metrics in enumerate(
        [
            {"eval_loss": 2.0, "eval_accuracy": 0.50, "eval_runtime": 1.0},
            {"eval_loss": 1.5, "eval_accuracy": 0.60, "eval_runtime": 9.0},
            {"eval_loss": 1.6, "eval_accuracy": 0.58},  # within 10% of the best: fine
            {"eval_loss": 1.8, "eval_accuracy": 0.50},  # loss +20%, accuracy -17%
        ],
        start=1,
    ):
        state.global_step = step
        callback.on_evaluate(args, state, control, metrics=metrics)
    assert sorted((a["metric"], a["step"]) for a in callback.sent) == [
        ("eval_accuracy", 4),
        ("eval_loss", 4),
    ]
    assert len(received) == 2 and all(r["alert"] == "quality" for r in received)


def test_an_unreachable_webhook_never_stops_training(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=0.5, webhook_url="http://127.0.0.1:9/x")
    _feed(callback, [2.0] * 10, tmp_path)  # logs the failure, raises nothing
    assert [a["alert"] for a in callback.sent] == ["loss_threshold"]


def _stopped_at_the_last_step(output: Path, tmp_path: Path) -> TrainerState:
    """A run of 12 steps (warmup 2) an alert stopped at its last one, as run 1 leaves it."""
    (output / "checkpoint-12").mkdir(parents=True)
    (output / "metrics.json").write_text(json.dumps({"global_step": 12}), encoding="utf-8")
    callback = AlertCallback(output, loss_threshold=1.5, action="stop")
    state = TrainerState()
    _feed(callback, [9.0] * 2 + [3.0] * 10, tmp_path, warmup=2, state=state)
    with pytest.raises(StoppedByAlert):
        AlertCallback.raise_if_stopped(_trainer(callback), output)
    return state


def _rerun_with_nothing_to_train(
    output: Path, state: TrainerState, tmp_path: Path, **settings: Any
) -> tuple[AlertCallback, Any]:
    """Run 2: resumes the step-12 checkpoint of a 12-step run; no step trains, nothing logs."""
    rerun = AlertCallback(output, **settings)
    restored = _resume(rerun, state.log_history, tmp_path, warmup=2)
    restored.max_steps = 12
    return rerun, _trainer(rerun, state=restored)


def test_a_rerun_after_a_stop_at_the_last_step_fails_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming checkpoint-12 of a 12-step run trains nothing: it must not pass as finished."""
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "output"
    state = _stopped_at_the_last_step(output, tmp_path)
    rerun, trainer = _rerun_with_nothing_to_train(output, state, tmp_path, **_STOP_AT_1_5)
    with pytest.raises(StoppedByAlert) as again:
        AlertCallback.raise_if_stopped(trainer, output)
    assert str(again.value).startswith("training stopped at step 12 of 1000 by the loss_threshold")
    assert "(and stops again while the alert holds)" in str(again.value)
    assert rerun.sent == [] and "\n" not in str(again.value)
    # ... and again on a third run (hybrid bundles rerun every adapter in turn).
    _, trainer = _rerun_with_nothing_to_train(output, state, tmp_path, **_STOP_AT_1_5)
    with pytest.raises(StoppedByAlert) as third:
        AlertCallback.raise_if_stopped(trainer, output)
    assert str(third.value) == str(again.value)


_STOP_AT_1_5: dict[str, Any] = {"loss_threshold": 1.5, "action": "stop"}


@pytest.mark.parametrize(
    "settings",
    [
        {"loss_threshold": 1.5, "action": "warn"},  # the user switched to warn and recompiled
        {"loss_threshold": 5.0, "action": "stop"},  # ... or raised the bound
    ],
)
def test_a_rerun_after_a_stop_passes_once_the_settings_no_longer_stop_it(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    output = tmp_path / "output"
    state = _stopped_at_the_last_step(output, tmp_path)
    _, trainer = _rerun_with_nothing_to_train(output, state, tmp_path, **settings)
    AlertCallback.raise_if_stopped(trainer, output)  # raises nothing


def test_a_rerun_that_trains_on_is_judged_by_its_own_logs(tmp_path: Path) -> None:
    """After the user raised max_steps: the recorded stop is history, the new logs decide."""
    output = tmp_path / "output"
    state = _stopped_at_the_last_step(output, tmp_path)
    warned = AlertCallback(output, loss_threshold=1.5, action="warn")
    restored = _resume(warned, state.log_history, tmp_path, warmup=2)
    _feed(warned, [3.0] * 5, tmp_path, warmup=2, state=restored, first_step=13)
    AlertCallback.raise_if_stopped(_trainer(warned, state=restored), output)  # trained on: passes
    stopped = AlertCallback(output, loss_threshold=1.5, action="stop")
    restored = _resume(stopped, state.log_history, tmp_path, warmup=2)
    _feed(stopped, [3.0], tmp_path, warmup=2, state=restored, first_step=13)
    with pytest.raises(StoppedByAlert, match="^training stopped at step 13 of 1000 "):
        AlertCallback.raise_if_stopped(_trainer(stopped, state=restored), output)


def test_a_small_quality_drop_is_shown_with_its_digits(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, quality_degradation=0.0)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control = TrainerState(), TrainerControl()
    for step, loss in ((10, 5.399), (20, 5.401)):
        state.global_step = step
        callback.on_evaluate(args, state, control, metrics={"eval_loss": loss})
    [alert] = callback.sent
    assert "eval_loss 5.401 at step 20 is 0.037% worse than its best, 5.399" in alert["message"]


def test_the_compiler_warns_with_the_runtime_window() -> None:
    """The compile-time warning keeps its own copy (the compile path imports no transformers)."""
    from lfm.compiler.rules.training import ALERT_WINDOW
    from lfm.runtime.alerts import WINDOW

    assert ALERT_WINDOW == WINDOW
