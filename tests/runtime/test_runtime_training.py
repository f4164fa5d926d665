"""Trainer glue: precision choice, resume point, metrics.json and saved adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from lfm.runtime import data, modeling, training
from lfm.runtime.errors import RuntimeConfigError

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallbacks")


@cpu_only
def test_choose_precision_on_cpu() -> None:
    assert training.choose_precision("auto") == (False, False)
    assert training.choose_precision("fp32") == (False, False)
    with pytest.raises(RuntimeConfigError, match="'bf16' needs a CUDA GPU"):
        training.choose_precision("bf16")
    with pytest.raises(RuntimeConfigError, match="'fp16' needs a CUDA GPU"):
        training.choose_precision("fp16")


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


def _train(model_dir: Path, data_file: Path, output: Path, max_steps: int) -> Any:
    """A real, tiny LoRA run laid out like an emitted train.py."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    training.seed_everything(0)
    tokenizer = modeling.load_tokenizer(str(model_dir))
    model = modeling.load_model(str(model_dir), dtype="float32")
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8))
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
        learning_rate=1e-3,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_steps=3,
        report_to="none",
        bf16=bf16,
        fp16=fp16,
        include_num_input_tokens_seen=True,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=data.collator(tokenizer),
        callbacks=[training.MetricsCallback(output)],
    )
    trainer.train(resume_from_checkpoint=training.last_checkpoint(output))
    training.save_outputs(trainer, tokenizer, output)
    return trainer


@pytest.fixture(scope="module")
def run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Train 3 steps; returns (data file, output dir)."""
    root = tmp_path_factory.mktemp("run")
    data_file = root / "train.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in ROWS * 2), encoding="utf-8")
    _train(tiny_model_dir, data_file, root / "output", max_steps=3)
    return data_file, root / "output"


def test_metrics_json(run: tuple[Path, Path]) -> None:
    text = (run[1] / "metrics.json").read_text(encoding="utf-8")
    metrics = json.loads(text)
    assert text == json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    assert [s["step"] for s in metrics["steps"]] == [1, 2, 3]
    assert all(s["loss"] > 0 and s["learning_rate"] is not None for s in metrics["steps"])
    assert [e["step"] for e in metrics["eval"]] == [2, 3]
    assert metrics["global_step"] == 3
    assert metrics["final_loss"] == metrics["steps"][-1]["loss"]
    assert metrics["num_input_tokens_seen"] > 0 and metrics["token_count_mode"] == "all"
    assert metrics["train_runtime"] > 0 and metrics["tokens_per_second"] > 0


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


def test_resume_keeps_earlier_steps_in_metrics(
    run: tuple[Path, Path], tiny_model_dir: Path
) -> None:
    data_file, output = run
    assert training.last_checkpoint(output) == str(output / "checkpoint-3")
    trainer = _train(tiny_model_dir, data_file, output, max_steps=5)
    assert trainer.state.global_step == 5
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert [s["step"] for s in metrics["steps"]] == [1, 2, 3, 4, 5]


def test_restarting_a_finished_run_keeps_its_metrics(
    run: tuple[Path, Path], tiny_model_dir: Path
) -> None:
    data_file, output = run
    _train(tiny_model_dir, data_file, output, max_steps=6)  # ends on a checkpoint (save_steps=3)
    before = (output / "metrics.json").read_text(encoding="utf-8")
    _train(tiny_model_dir, data_file, output, max_steps=6)  # resumes at step 6: nothing to train
    assert (output / "metrics.json").read_text(encoding="utf-8") == before


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
