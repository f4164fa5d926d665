"""Alerts: NaN and threshold, divergence, quality degradation; delivered to a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lfm.runtime.alerts import ALERTS_FILE, AlertCallback
from transformers import TrainerControl, TrainerState, TrainingArguments


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on loopback recording the JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "type": self.headers["Content-Type"], **json.loads(body)}
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/lfm", received
    server.shutdown()
    server.server_close()


def _feed(callback: AlertCallback, losses: list[float], tmp_path: Path, warmup: int = 0) -> Any:
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=warmup, report_to="none")
    state, control = TrainerState(), TrainerControl()
    state.max_steps = 1000
    for step, loss in enumerate(losses, start=1):
        state.global_step = step
        callback.on_log(args, state, control, logs={"loss": loss})
    return control


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


def test_loss_threshold_only_after_warmup_and_rearms(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=1.0, divergence_factor=None)
    # Warmup (5 steps) at 9.0 is ignored; then above the bound, back under, above again.
    _feed(callback, [9.0] * 5 + [3.0] * 3 + [0.1] * 30 + [5.0] * 10, tmp_path, warmup=5)
    assert [(a["alert"], a["step"]) for a in callback.sent] == [
        ("loss_threshold", 6),
        ("loss_threshold", 40),  # the 10-log mean crosses 1.0 at the 2nd 5.0
    ]


def test_divergence(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, divergence_factor=2.0)
    _feed(callback, [1.0] * 20 + [1.5] * 10, tmp_path)
    assert callback.sent == []  # 1.5x its lowest: not diverging yet
    _feed(callback, [1.0] * 20 + [4.0] * 10, tmp_path)
    [alert] = callback.sent
    assert alert["alert"] == "divergence" and "diverging" in alert["message"]


def test_action_stop_asks_the_trainer_to_save_and_stop(tmp_path: Path) -> None:
    callback = AlertCallback(tmp_path, loss_threshold=0.5, action="stop")
    control = _feed(callback, [2.0], tmp_path)
    assert control.should_training_stop and control.should_save


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
    _feed(callback, [2.0], tmp_path)  # logs the failure, raises nothing
    assert [a["alert"] for a in callback.sent] == ["loss_threshold"]
