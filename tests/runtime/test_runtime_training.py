"""Trainer glue: precision choice, resume point, metrics.json and saved adapters."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from lfm.runtime import data, modeling, training
from lfm.runtime.alerts import StoppedByAlert
from lfm.runtime.errors import RuntimeConfigError
from transformers import TrainerCallback

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallbacks")


@cpu_only
def test_choose_precision_on_cpu() -> None:
    assert training.choose_precision("auto") == (False, False)
    assert training.choose_precision("fp32") == (False, False)
    for half in ("bf16", "fp16"):
        with pytest.raises(RuntimeConfigError, match=f"'{half}' needs a CUDA GPU") as refused:
            training.choose_precision(half)
        message = str(refused.value)
        # auto cannot help a DeepSpeed bundle, which states bf16 when compiled from auto.
        assert message.endswith(
            "; on a CPU set fine_tuning.training.precision: fp32 (DeepSpeed bundles state their "
            "precision when compiled)"
        )
        assert "auto" not in message and "\n" not in message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_choose_precision_on_cuda() -> None:
    bf16 = torch.cuda.is_bf16_supported()
    assert training.choose_precision("auto") == (bf16, not bf16)
    assert training.choose_precision("fp16") == (False, True)
    assert training.choose_precision("fp32") == (False, False)
    if bf16:
        assert training.choose_precision("bf16") == (True, False)


def test_choose_precision_rejects_unknown_values() -> None:
    with pytest.raises(RuntimeConfigError, match="precision 'half' is not supported"):
        training.choose_precision("half")


def _checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}", encoding="utf-8")
    return path


def test_last_checkpoint_skips_incomplete(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert training.last_checkpoint(tmp_path / "missing") is None
    assert training.last_checkpoint(tmp_path) is None
    _checkpoint(tmp_path, 5)
    ten = _checkpoint(tmp_path, 10)  # numeric order, not text order ("10" < "5")
    _checkpoint(tmp_path, 20, complete=False)  # killed mid-save
    (tmp_path / "checkpoint-30").mkdir()
    (tmp_path / "checkpoint-30" / "trainer_state.json").write_text("{trunc", encoding="utf-8")
    (tmp_path / "checkpoint-final").mkdir()
    assert training.last_checkpoint(tmp_path) == str(ten)
    err = capsys.readouterr().err
    assert (
        "Skipping incomplete checkpoint" in err
        and f"Resuming training from checkpoint {ten}" in err
    )


ROWS = [
    {"instruction": f"Repeat the word {w}", "output": w} for w in ["red", "blue", "green", "gold"]
]


def _train(
    model_dir: Path,
    data_file: Path,
    output: Path,
    max_steps: int,
    *,
    packing: bool = True,
    stop_at: int | None = None,
    report_to: str = "none",
    save_steps: int = 3,
    learning_rate: float = 1e-3,
    callbacks: tuple[Any, ...] = (),
    lora_dropout: float = 0.0,
    eval_strategy: str = "steps",
    logging_steps: int = 1,
) -> Any:
    """A real, tiny LoRA run laid out like an emitted train.py (``stop_at``: end early there)."""
    from peft import LoraConfig, get_peft_model
    from transformers import TrainingArguments

    training.seed_everything(0)
    tokenizer = modeling.load_tokenizer(str(model_dir))
    model = modeling.load_model(
        str(model_dir), dtype="float32", attn_implementation=training.choose_attention("auto")
    )
    model = get_peft_model(
        model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=lora_dropout)
    )
    spec = data.DatasetSpec(
        source_type="local",
        path=data_file.name,
        format="alpaca",
        max_length=128,
        holdout_ratio=0.25,
    )
    train_set, eval_set = data.load_sft_dataset(spec, tokenizer, base_dir=data_file.parent)
    bf16, fp16 = training.choose_precision("auto")
    args = TrainingArguments(
        output_dir=str(output),
        max_steps=max_steps,
        per_device_train_batch_size=2,
        learning_rate=learning_rate,
        logging_steps=logging_steps,
        logging_nan_inf_filter=False,  # as train.py sets it
        eval_strategy=eval_strategy,
        eval_steps=2,
        save_steps=save_steps,
        save_total_limit=2,
        report_to=report_to,
        bf16=bf16,
        fp16=fp16,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    callbacks = [training.MetricsCallback(output), *callbacks]
    if stop_at:
        callbacks.append(_StopAt(stop_at))
    trainer = training.Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=data.collator(tokenizer, packing=packing, max_length=128, model=model),
        callbacks=callbacks,
    )
    training.show_progress(trainer, live=False)
    trainer.train(resume_from_checkpoint=training.last_checkpoint(output))
    training.save_outputs(trainer, tokenizer, output)
    return trainer


class _StopAt(TrainerCallback):
    """Ends the run after ``step`` as a kill right after that step's checkpoint would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            control.should_training_stop = True


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS * 2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(
    tiny_model_dir: Path, data_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Train 3 steps; returns (data file, output dir)."""
    output = tmp_path_factory.mktemp("run") / "output"
    _train(tiny_model_dir, data_file, output, max_steps=3)
    return data_file, output


def test_metrics_json(run: tuple[Path, Path]) -> None:
    text = (run[1] / "metrics.json").read_text(encoding="utf-8")
    metrics = json.loads(text)
    assert text == json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    assert [s["step"] for s in metrics["steps"]] == [1, 2, 3]
    assert all(s["loss"] > 0 and s["learning_rate"] is not None for s in metrics["steps"])
    assert [e["step"] for e in metrics["eval"]] == [2, 3]
    # The same evaluations, written as they happened (what a live eval-loss curve reads).
    live = [json.loads(line) for line in (run[1] / "evals.jsonl").read_text().splitlines()]
    assert [(e["step"], e["eval_loss"]) for e in live] == [
        (e["step"], e["eval_loss"]) for e in metrics["eval"]
    ]
    assert metrics["global_step"] == 3
    assert metrics["final_loss"] == metrics["steps"][-1]["loss"]
    assert metrics["num_input_tokens_seen"] > 0 and metrics["token_count_mode"] == "non_padding"
    # Packed: no padding at all, so every token counted is a real one.
    assert metrics["num_total_tokens"] == metrics["num_input_tokens_seen"]
    assert metrics["token_efficiency"] == 1.0
    assert metrics["train_runtime"] > 0 and metrics["tokens_per_second"] > 0
    assert metrics["peak_rss_mb"] > 0


def test_metrics_jsonl_has_a_line_per_step(run: tuple[Path, Path]) -> None:
    lines = [json.loads(line) for line in (run[1] / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == [1, 2, 3]
    for entry in lines:
        assert entry["loss"] > 0 and entry["grad_norm"] > 0 and entry["learning_rate"] is not None
        assert entry["tokens"] > 0 and entry["tokens_per_second"] > 0
        assert entry["token_efficiency"] == 1.0 and entry["rss_mb"] > 0
    total = json.loads((run[1] / "metrics.json").read_text())["num_input_tokens_seen"]
    assert sum(e["tokens"] for e in lines) == total


def test_a_resumed_run_logs_and_saves_as_its_new_settings_say(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """Not as the checkpoint's trainer state did (transformers would keep those for good)."""
    out = tmp_path / "out"
    _train(tiny_model_dir, data_file, out, max_steps=4, logging_steps=1, save_steps=2)
    _train(tiny_model_dir, data_file, out, max_steps=8, logging_steps=2, save_steps=5)
    assert list(_losses(out)) == [1, 2, 3, 4, 6, 8]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-5", "checkpoint-8"]


def test_a_longer_resumed_run_takes_its_first_step_on_the_new_schedule(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """A finished run's optimizer ends at learning rate 0 (linear decay): raising max_steps
    must not spend the first new step at 0, but at the rate the longer schedule gives it."""
    out = tmp_path / "out"
    _train(tiny_model_dir, data_file, out, max_steps=4, save_steps=4)
    _train(tiny_model_dir, data_file, out, max_steps=8, save_steps=4)
    rates = {
        entry["step"]: entry["learning_rate"]
        for entry in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
    }
    assert rates[4] == pytest.approx(1e-3 * 1 / 4)  # the short run's last step
    assert rates[5] == pytest.approx(1e-3 * 4 / 8)  # linear over 8 steps, at step 5
    assert rates[8] == pytest.approx(1e-3 * 1 / 8)


def test_the_last_step_is_logged_whatever_logging_steps_is(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=5, logging_steps=2)
    assert list(_losses(tmp_path / "out")) == [2, 4, 5]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["final_loss"] == _losses(tmp_path / "out")[5]
    assert not (tmp_path / "out" / ".staging").exists()  # checkpoints renamed out of it


def test_padded_runs_count_their_padding(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=2, packing=False)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["num_total_tokens"] > metrics["num_input_tokens_seen"] > 0
    assert 0 < metrics["token_efficiency"] < 1


def test_tensorboard_gets_the_step_metrics(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=3, report_to="tensorboard")
    [events] = {p.parent for p in (tmp_path / "out").rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("train/loss")] == [1, 2, 3]
    # The Trainer's figures and lfm's (MetricsCallback runs before the trackers' callbacks).
    assert TRACKED.issubset(accumulator.Tags()["scalars"])
    assert [e.value for e in accumulator.Scalars("train/token_efficiency")] == [1.0, 1.0, 1.0]


TRACKED = {
    f"train/{name}"
    for name in (
        "loss",
        "grad_norm",
        "learning_rate",
        "tokens_per_second",
        "token_efficiency",
        "rss_mb",
    )
}


def test_wandb_gets_the_step_metrics(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offline W&B run (no key, no network): its log holds every step's figures."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_PROJECT", "lfm-tests")
    monkeypatch.setenv("WANDB_SILENT", "true")
    training.check_trackers(["wandb"])  # offline: no key needed
    _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=3, report_to="wandb")
    import wandb

    wandb.finish()  # flush the run's log (train.py's process exit does it)
    [log] = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    steps = [row for row in _wandb_history(log) if "train/loss" in row]
    assert [row["train/global_step"] for row in steps] == [1, 2, 3]
    assert all(TRACKED.issubset(row) for row in steps)


def _wandb_history(path: Path) -> list[dict[str, Any]]:
    """The history rows of an offline W&B run's ``.wandb`` file.

    The file is a LevelDB-style log (wandb's own sync reads it): a 7-byte header, then 32 KiB
    blocks of records, each a 7-byte header (crc32, length, kind) and a protobuf ``Record``
    or a piece of one.
    """
    from wandb.proto.wandb_internal_pb2 import Record

    raw = path.read_bytes()
    assert raw[:4] == b":W&B", "not a W&B run log"
    block, position, pending, rows = 32 * 1024, 7, b"", []
    while position + 7 <= len(raw):
        room = block - position % block
        length, kind = int.from_bytes(raw[position + 4 : position + 6], "little"), raw[position + 6]
        if room < 7 or kind == 0:  # the rest of a block is padding
            position += room
            continue
        pending += raw[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {
                        item.key or "/".join(item.nested_key): json.loads(item.value_json)
                        for item in record.history.item
                    }
                )
    return rows


def test_mlflow_gets_the_step_metrics(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tiny")
    _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=3, report_to="mlflow")
    _assert_mlflow_run(MlflowClient(uri), "tiny")


@pytest.mark.slow  # the server takes 15-30 s to start
def test_a_real_mlflow_server_gets_the_run(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URI a config gives: train.py's check passes, the run lands on the server."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from mlflow_server import start_mlflow, stop_mlflow

    server, uri = start_mlflow(tmp_path)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tiny-served")
        training.check_trackers(["mlflow"])
        _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=3, report_to="mlflow")
        _assert_mlflow_run(MlflowClient(uri), "tiny-served")
    finally:
        stop_mlflow(server)


def _assert_mlflow_run(client: Any, experiment: str) -> None:
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    for name in TRACKED:
        history = client.get_metric_history(run.info.run_id, name.removeprefix("train/"))
        assert [m.step for m in history] == [1, 2, 3], name


def test_save_outputs_writes_a_loadable_adapter(
    run: tuple[Path, Path], tiny_model_dir: Path
) -> None:
    from peft import PeftModel

    output = run[1]
    assert (output / "adapter_config.json").exists()
    assert (output / "tokenizer.json").exists()
    base = modeling.load_model(str(tiny_model_dir), dtype="float32")
    model = PeftModel.from_pretrained(base, str(output))
    assert any("lora_A" in name for name, _ in model.named_parameters())


def _losses(output: Path) -> dict[int, float]:
    lines = (output / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return {e["step"]: e["loss"] for e in map(json.loads, lines)}


@pytest.mark.parametrize(
    ("dropout", "evaluate"),
    [(0.0, "steps"), (0.1, "steps"), (0.1, "epoch")],
    ids=["no-dropout", "dropout", "dropout-epoch-eval"],
)
def test_resumed_run_matches_an_uninterrupted_one(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, dropout: float, evaluate: str
) -> None:
    """With dropout the random state must match too. 3 steps an epoch here: checkpoint-3 ends
    the first epoch, and an evaluation per epoch runs after that save in the whole run."""
    settings = {"max_steps": 7, "lora_dropout": dropout, "eval_strategy": evaluate}
    whole = _train(tiny_model_dir, data_file, tmp_path / "whole", **settings)
    # Stopped at step 5: the newest checkpoint is step 3; steps 4-5 are lost and redone.
    _train(tiny_model_dir, data_file, tmp_path / "cut", stop_at=5, **settings)
    assert _losses(tmp_path / "cut").keys() == {1, 2, 3, 4, 5}
    assert training.last_checkpoint(tmp_path / "cut") == str(tmp_path / "cut" / "checkpoint-3")
    resumed = _train(tiny_model_dir, data_file, tmp_path / "cut", **settings)
    assert resumed.state.global_step == whole.state.global_step == 7
    expected, got = _losses(tmp_path / "whole"), _losses(tmp_path / "cut")
    assert list(got) == list(range(1, 8))  # the killed run's steps 4-5 were replaced
    assert got == pytest.approx(expected, rel=1e-6)
    metrics = json.loads((tmp_path / "cut" / "metrics.json").read_text(encoding="utf-8"))
    assert [s["step"] for s in metrics["steps"]] == list(range(1, 8))
    # keep-last-2: of 3, 6 and the final 7, the newest two remain.
    assert sorted(p.name for p in (tmp_path / "cut").glob("checkpoint-*")) == [
        "checkpoint-6",
        "checkpoint-7",
    ]


def test_a_save_killed_midway_leaves_no_checkpoint(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import Trainer

    saves = {"n": 0}
    original = Trainer._save_rng_state

    def die_on_second_save(self: Any, output_dir: str) -> None:
        saves["n"] += 1
        if saves["n"] == 2:  # model and optimizer written, trainer state not yet
            raise KeyboardInterrupt("killed while saving")
        original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", die_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_model_dir, data_file, tmp_path / "out", max_steps=7)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
    assert (out / ".staging" / "checkpoint-6" / "adapter_model.safetensors").exists()
    monkeypatch.setattr(Trainer, "_save_rng_state", original)
    assert training.last_checkpoint(out) == str(out / "checkpoint-3")
    trainer = _train(tiny_model_dir, data_file, out, max_steps=7)
    assert trainer.state.global_step == 7
    assert not (out / ".staging" / "checkpoint-6").exists()


def test_restarting_a_finished_run_keeps_its_metrics(
    run: tuple[Path, Path], tiny_model_dir: Path
) -> None:
    data_file, output = run
    _train(tiny_model_dir, data_file, output, max_steps=6)  # ends on a checkpoint (save_steps=3)
    before = (output / "metrics.json").read_text(encoding="utf-8")
    _train(tiny_model_dir, data_file, output, max_steps=6)  # resumes at step 6: nothing to train
    assert (output / "metrics.json").read_text(encoding="utf-8") == before


def test_a_restart_from_the_final_checkpoint_mid_epoch_trains_no_further(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """Killed after its last checkpoint, before its outputs: the restart trains nothing more.

    6 training rows in batches of 2 make 3 steps per epoch, so step 4 ends mid-epoch, where
    transformers alone would resume into one more step.
    """
    output = tmp_path / "out"
    _train(tiny_model_dir, data_file, output, max_steps=4, save_steps=2)
    (output / "metrics.json").unlink()  # as if killed before the outputs were written
    again = _train(tiny_model_dir, data_file, output, max_steps=4, save_steps=2)
    assert again.state.global_step == 4
    assert json.loads((output / "metrics.json").read_text())["global_step"] == 4


@pytest.mark.parametrize(
    ("bf16", "fp16", "trains_all", "expected"),
    [
        (False, False, False, "float32"),  # CPU: fp32 everywhere
        (True, False, False, "bfloat16"),  # frozen base under an adapter: half precision
        (False, True, False, "float16"),
        (True, False, True, "float32"),  # full fine-tuning keeps fp32 master weights
        (False, True, True, "float32"),
    ],
)
def test_weights_dtype_follows_precision_and_method(bf16, fp16, trains_all, expected) -> None:
    assert training.weights_dtype(bf16, fp16, trains_all_weights=trains_all) == expected


def test_liger_kernels_without_the_package_is_a_one_line_error(tmp_path: Path) -> None:
    import importlib.util

    from transformers import TrainingArguments

    if importlib.util.find_spec("liger_kernel") is not None:
        pytest.skip("liger-kernel is installed here")
    args = TrainingArguments(output_dir=str(tmp_path), use_liger_kernel=True, report_to="none")
    with pytest.raises(RuntimeConfigError, match="pip install liger-kernel"):
        training.Trainer(model=None, args=args)


def test_a_nan_loss_reaches_the_log_and_the_alert(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """Weights that turn NaN after step 1 make every later loss NaN: the log must say so.

    transformers' default ``logging_nan_inf_filter`` would log a made-up average instead (and
    test each step's loss on the host to do it), so the NaN alert would never fire; train.py
    turns the filter off.
    """
    output = tmp_path / "output"
    alerts = training.AlertCallback(output, divergence_factor=None)
    _train(
        tiny_model_dir,
        data_file,
        output,
        max_steps=3,
        save_steps=100,
        callbacks=(_PoisonWeightsAfter(1), alerts),
    )
    losses = _losses(output)
    assert math.isfinite(losses[1]) and math.isnan(losses[2]) and math.isnan(losses[3])
    sent = [json.loads(line) for line in (output / "alerts.jsonl").read_text().splitlines()]
    assert [(alert["alert"], alert["step"]) for alert in sent] == [("loss_nan", 2)]


class _PoisonWeightsAfter(TrainerCallback):
    """Sets the trainable weights to NaN after ``step``, as a diverged update would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            for param in kwargs["model"].parameters():
                if param.requires_grad:
                    param.data.fill_(float("nan"))


def test_a_rerun_after_an_alert_stopped_the_last_step_fails_again(
    tiny_model_dir: Path, data_file: Path, tmp_path: Path
) -> None:
    """The stop at step 10 of 10 leaves checkpoint-10: the rerun trains nothing, yet fails."""
    output = tmp_path / "output"

    def run() -> str:
        alerts = training.AlertCallback(
            output, loss_threshold=0.001, divergence_factor=None, action="stop"
        )
        with pytest.raises(StoppedByAlert) as stopped:
            _train(tiny_model_dir, data_file, output, max_steps=10, callbacks=(alerts,))
        return str(stopped.value)

    first = run()
    assert first.startswith("training stopped at step 10 of 10 by the loss_threshold alert")
    assert (output / "checkpoint-10").is_dir()
    assert run() == first
    steps = [json.loads(line)["step"] for line in (output / "metrics.jsonl").open()]
    assert steps == list(range(1, 11))  # the rerun trained nothing
