"""Logits at the loss positions only: the same loss and gradients, less output-layer work."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lfm.runtime import data, loss_positions, modeling, training

ROWS = [
    {"instruction": "Repeat " + " ".join(["word"] * n), "output": "word " * (n % 5 + 1)}
    for n in range(1, 17)
]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("positions") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path, data_file: Path) -> list[dict]:
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    spec = data.DatasetSpec(
        source_type="local", path=data_file.name, format="alpaca", max_length=256, holdout_ratio=0
    )
    train, _ = data.load_sft_dataset(spec, tokenizer, base_dir=data_file.parent)
    return [train[i] for i in range(len(train))]


def test_positions_are_those_whose_next_token_has_a_label() -> None:
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 5, -100, -100, -100]])
    assert loss_positions.loss_positions(labels).tolist() == [0, 1, 2]
    assert loss_positions.loss_positions(torch.full((2, 4), -100)) is None


def test_padded_batches_give_the_models_own_loss_and_gradients(
    tiny_model_dir: Path, examples: list[dict], tiny_lora: Callable[..., Any]
) -> None:
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    model = tiny_lora()
    model.train()
    collate = data.collator(tokenizer, model=model)
    assert isinstance(collate, loss_positions.LossPositionsCollator)
    batch = collate(examples[:4])
    positions = batch.pop(loss_positions.LOSS_POSITIONS)
    assert 0 < len(positions) < batch["input_ids"].shape[1] - 1  # the prompt is skipped
    count = (batch["labels"][:, 1:] != -100).sum()  # what the Trainer passes as num_items

    def loss_and_grads(compute: Any) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad()
        loss = compute()
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    own = loss_and_grads(lambda: model(**batch, use_cache=False, num_items_in_batch=count).loss)
    only = loss_and_grads(
        lambda: loss_positions.compute_loss(
            model, dict(batch), positions, model.get_base_model().loss_function, count
        )
    )
    assert only[0] == pytest.approx(own[0], rel=1e-6)
    for a, b in zip(own[1], only[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_the_output_layer_sees_only_the_loss_positions(
    tiny_model_dir: Path, examples: list[dict], tiny_lora: Callable[..., Any]
) -> None:
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    model = tiny_lora()
    batch = data.collator(tokenizer, packing=True, max_length=256, model=model)(examples[:4])
    positions = batch.pop(loss_positions.LOSS_POSITIONS)
    rows: list[int] = []
    lm_head = model.get_base_model().lm_head
    handle = lm_head.register_forward_hook(lambda _m, args, _o: rows.append(args[0].shape[1]))
    try:
        loss_positions.compute_loss(
            model, dict(batch), positions, model.get_base_model().loss_function
        )
    finally:
        handle.remove()
    labelled = int((batch["labels"] != -100).sum())
    assert rows == [len(positions)] and len(positions) == labelled
    assert labelled < batch["input_ids"].shape[1]


def test_prompt_learning_computes_every_position(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture, tiny_lora: Callable[..., Any]
) -> None:
    from peft import PromptTuningConfig

    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    model = tiny_lora(PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    with caplog.at_level(logging.INFO):
        collate = data.collator(tokenizer, model=model)
    assert not isinstance(collate, loss_positions.LossPositionsCollator)
    assert "Logits for every position" in caplog.text and "virtual tokens" in caplog.text


def test_a_loss_that_differs_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tiny_lora: Callable[..., Any]
) -> None:
    """The check before training compares the two losses; a model that disagrees pads out."""
    model = tiny_lora()
    real = loss_positions.compute_loss
    monkeypatch.setattr(loss_positions, "compute_loss", lambda *a, **k: real(*a, **k) * 1.1)
    with caplog.at_level(logging.WARNING):
        collate = loss_positions.prepare(model, lambda features: features)
    assert not isinstance(collate, loss_positions.LossPositionsCollator)
    assert "differs from its own" in caplog.text


def _run(
    model_dir: Path, lora: Callable[..., Any], data_file: Path, output: Path
) -> list[dict[str, Any]]:
    from transformers import TrainingArguments

    training.seed_everything(0)
    tokenizer = modeling.load_tokenizer(str(model_dir))
    model = lora()
    spec = data.DatasetSpec(
        source_type="local", path=data_file.name, format="alpaca", max_length=128, holdout_ratio=0
    )
    train_set, _ = data.load_sft_dataset(spec, tokenizer, base_dir=data_file.parent)
    args = TrainingArguments(
        output_dir=str(output),
        max_steps=4,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = training.Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        data_collator=data.collator(tokenizer, packing=True, max_length=128, model=model),
        callbacks=[training.MetricsCallback(output)],
    )
    trainer.train()
    lines = (output / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_a_run_trains_the_same_with_and_without_loss_positions(
    tiny_model_dir: Path,
    tiny_lora: Callable[..., Any],
    data_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four optimizer steps with gradient accumulation: the same losses and grad norms."""
    with_positions = _run(tiny_model_dir, tiny_lora, data_file, tmp_path / "positions")
    monkeypatch.setattr(loss_positions, "prepare", lambda model, collator: collator)
    every_position = _run(tiny_model_dir, tiny_lora, data_file, tmp_path / "every")
    assert len(with_positions) == len(every_position) == 4
    for a, b in zip(with_positions, every_position, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
