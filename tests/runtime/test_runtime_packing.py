"""Packing: the same losses and gradients as padding, and a check that catches leaking attention."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lfm.runtime import data, loss_positions, modeling, packing
from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

ROWS = [
    {"instruction": "Repeat " + " ".join(["word"] * n), "output": "word " * (n % 5 + 1)}
    for n in range(1, 13)
]


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    import json

    path = tmp_path_factory.mktemp("packing") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    spec = data.DatasetSpec(
        source_type="local", path=path.name, format="alpaca", max_length=256, holdout_ratio=0
    )
    train, _ = data.load_sft_dataset(spec, tokenizer, base_dir=path.parent)
    return [train[i] for i in range(len(train))]


def _loss_and_grads(model: Any, batch: dict) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return loss.item(), grads


@pytest.mark.parametrize(
    ("cuda", "attention"), [(False, packing.PER_EXAMPLE_SDPA), (True, "sdpa")], ids=["cpu", "cuda"]
)
def test_packed_batches_train_exactly_like_padded_ones(
    tiny_model_dir: Path,
    examples,
    monkeypatch: pytest.MonkeyPatch,
    cuda: bool,
    attention: str,
    tiny_lora: Callable[..., Any],
) -> None:
    """Both packed attentions: per-example sdpa (CPU) and transformers' packed mask (CUDA)."""
    monkeypatch.setattr(packing, "_cuda_available", lambda: cuda)
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    model = tiny_lora()
    model.train()
    batches = [examples[i : i + 4] for i in range(0, 12, 4)]
    padded = [
        _loss_and_grads(model, data.collator(tokenizer)(b) | {"use_cache": False}) for b in batches
    ]
    collate = data.collator(tokenizer, packing=True, max_length=256, model=model)
    assert isinstance(collate.inner, DataCollatorWithFlattening)
    assert model.get_base_model().config._attn_implementation == attention
    for batch, (loss, grads) in zip(batches, padded, strict=True):
        packed = collate(batch)
        positions = packed.pop(loss_positions.LOSS_POSITIONS)
        assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
        packed_loss, packed_grads = _loss_and_grads(model, packed)  # no use_cache: the hook sets it
        assert packed_loss == pytest.approx(loss, rel=1e-5)
        for a, b in zip(grads, packed_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        # And with logits at the loss positions only, as the Trainer computes it.
        model.zero_grad()
        only = loss_positions.compute_loss(
            model, dict(packed), positions, model.get_base_model().loss_function
        )
        only.backward()
        assert only.item() == pytest.approx(loss, rel=1e-5)
        for a, p in zip(grads, [p for p in model.parameters() if p.requires_grad], strict=True):
            torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)


def test_packed_attention_is_one_kernel_per_layer_on_cuda() -> None:
    assert packing.packed_attention("sdpa", cuda=True) == "sdpa"
    assert packing.packed_attention("sdpa", cuda=False) == packing.PER_EXAMPLE_SDPA
    assert packing.packed_attention("eager", cuda=True) == packing.PER_EXAMPLE_SDPA
    for varlen in packing.VARLEN_ATTENTION:
        assert packing.packed_attention(varlen, cuda=False) == varlen


def test_native_packed_sdpa_reads_no_boundaries_per_layer(
    examples, tiny_lora: Callable[..., Any]
) -> None:
    """The CUDA path: one mask per forward, no host read of the boundaries in the layers."""
    model = tiny_lora()
    model.train()
    packing.disable_cache_in_training(model)
    batch = packing.collator()(examples[:4])

    class NoHostReads(torch.Tensor):
        def tolist(self):  # what per-example attention does in every layer
            raise AssertionError("boundaries read back to the host")

    batch["cu_seq_lens_q"] = batch["cu_seq_lens_q"].as_subclass(NoHostReads)
    assert model(**batch).loss.isfinite()


def test_without_the_cache_hook_attention_would_leak(
    examples, tiny_lora: Callable[..., Any]
) -> None:
    """Why disable_cache_in_training exists: with a cache, transformers ignores the restarts."""
    model = tiny_lora()
    model.train()
    batch = DataCollatorWithFlattening(separator_id=-100)(examples[:4])
    with_cache = model(**batch, use_cache=True).loss.item()
    without = model(**batch, use_cache=False).loss.item()
    assert abs(with_cache - without) > 1e-3


def _leaky_attention(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    kwargs.pop("cu_seq_lens_q", None)
    return sdpa_attention_forward(
        module,
        query,
        key,
        value,
        None,
        is_causal=True,
        **{k: v for k, v in kwargs.items() if k in ("dropout", "scaling")},
    )


def test_check_model_catches_attention_that_crosses_examples(tiny_lora: Callable[..., Any]) -> None:
    from transformers import AttentionInterface

    AttentionInterface.register("leaky_for_test", _leaky_attention)
    model = tiny_lora()
    model.get_base_model().set_attn_implementation("leaky_for_test")
    reason = packing.check_model(model, "sdpa")
    assert reason is not None and "differ" in reason
    model.get_base_model().set_attn_implementation(packing.PER_EXAMPLE_SDPA)
    packing._register_per_example_sdpa()
    assert packing.check_model(model, "sdpa") is None


def test_prompt_learning_falls_back_to_padding(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture, tiny_lora: Callable[..., Any]
) -> None:
    from peft import PromptTuningConfig

    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    model = tiny_lora(PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    with caplog.at_level(logging.WARNING):
        collate = data.collator(tokenizer, packing=True, max_length=256, model=model)
    assert isinstance(collate, DataCollatorForSeq2Seq)
    assert "Sample packing is off" in caplog.text and "virtual tokens" in caplog.text
    assert model.get_base_model().config._attn_implementation == "sdpa"


def test_sliding_windows_shorter_than_max_length_are_refused(tiny_lora: Callable[..., Any]) -> None:
    model = tiny_lora()
    model.get_base_model().config.sliding_window = 32
    assert "sliding-window" in (packing.unsupported_reason(model, 64) or "")
    assert packing.unsupported_reason(model, 32) is None


def test_token_counter_padded_and_packed(tokenizer, examples) -> None:
    from types import SimpleNamespace

    from lfm.runtime.metrics import TokenCounter

    training = SimpleNamespace(training=True)
    padded = data.collator(tokenizer)(examples[:3])
    counter = TokenCounter()
    counter._count(training, (), padded)
    counter._count(training, (), padded)
    real = sum(len(e["input_ids"]) for e in examples[:3])
    assert counter._pending is not None  # a mask sum, not read back until asked for
    assert (counter.real, counter.total) == (2 * real, 2 * padded["input_ids"].numel())
    assert padded["input_ids"].numel() > real
    packed = packing.collator()(examples[:3])
    counter = TokenCounter()
    counter._count(training, (), packed)
    counter._count(SimpleNamespace(training=False), (), packed)  # evaluation: not counted
    assert (counter.real, counter.total) == (real, real)


def test_packing_needs_the_model(tokenizer) -> None:
    from lfm.runtime.errors import RuntimeConfigError

    with pytest.raises(RuntimeConfigError, match="packing needs max_length and the model"):
        data.collator(tokenizer, packing=True)


@pytest.mark.parametrize("sharding", ["zero3", "fsdp"])
def test_sharded_weights_skip_the_probe_on_every_rank(
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sharding: str,
    tiny_lora: Callable[..., Any],
) -> None:
    """ZeRO-3/FSDP weights are not whole before training: no probe, the same choice everywhere."""
    model = tiny_lora()
    keep_alive = None
    if sharding == "zero3":
        pytest.importorskip("deepspeed")
        from transformers.integrations import HfDeepSpeedConfig

        keep_alive = HfDeepSpeedConfig(  # noqa: F841 (ZeRO-3 is on while it lives)
            {"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1}
        )
    else:
        monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")

    def probe(*_: Any) -> str:
        raise AssertionError("the probe ran a forward pass on sharded weights")

    monkeypatch.setattr(packing, "check_model", probe)
    tokenizer = modeling.load_tokenizer(str(tiny_model_dir))
    with caplog.at_level(logging.WARNING):
        collate = data.collator(tokenizer, packing=True, max_length=256, model=model)
    assert isinstance(collate.inner, DataCollatorWithFlattening)
    assert "without its packed-logits check" in caplog.text
    del keep_alive
