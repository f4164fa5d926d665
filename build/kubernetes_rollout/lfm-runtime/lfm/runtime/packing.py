"""Sample packing: a batch's examples laid end to end in one row, none seeing another.

A batch padded to its longest example spends compute on pad tokens (a third or more of them
with Alpaca-style data). Packed, the batch is one row with no padding at all: transformers'
own ``DataCollatorWithFlattening`` concatenates the examples, restarts ``position_ids`` at 0
for each, sets each example's first label to -100 (nothing learns to predict the next
example's first token) and passes the example boundaries (``cu_seq_lens_q``/``_k``).
Attention then has to stay within each example:

- ``flash_attention_2``/``_3`` (GPUs with flash-attn installed): the varlen kernels read the
  boundaries directly; this is transformers' padding-free path.
- ``sdpa`` on a CUDA GPU: transformers' own packed-sequence support. With no attention mask,
  no cache and position ids that restart, its mask code finds the examples
  (``find_packed_sequence_indices``) and builds one block-diagonal causal mask per forward
  pass, which every layer's single sdpa kernel uses. The mask costs the square of the row,
  but on a GPU that is far cheaper than one kernel sequence per example per layer (the
  per-example loop launched about 1.8x the operations of a step and read the boundaries back
  to the host in every layer, stalling the GPU queue each time).
- anything else (``sdpa`` on a CPU, ``eager``): there the square mask is slower than padding,
  so the model is switched to ``lfm_sdpa_varlen``, registered here through transformers'
  ``AttentionInterface``: it runs transformers' own sdpa function once per example with a
  plain causal mask (on a CPU, reading the boundaries costs nothing).

Each step trains on exactly the examples and tokens it would have trained on padded, with the
same loss normalisation, so packing changes speed, not results (tests compare the losses).

The KV cache must be off in training forward passes: transformers ignores the position-id
restarts when a cache is passed. :func:`disable_cache_in_training` does that with a forward
pre-hook (it also saves the cache's memory), leaving generation untouched.

The fallback is padding (``data.collator``): for prefix and prompt tuning (PEFT prepends
virtual tokens that the position restarts would not cover), and for any model whose packed
logits differ from its unpacked ones, which :func:`check_model` measures before training.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import first_line
from .labeling import IGNORE_INDEX
from .modeling import prompt_learning, transformers_model

logger = logging.getLogger(__name__)
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")
PER_EXAMPLE_SDPA = "lfm_sdpa_varlen"


def collator() -> Any:
    """transformers' flattening collator, with the boundaries every varlen path needs."""
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(
        separator_id=IGNORE_INDEX, return_flash_attn_kwargs=True, return_position_ids=True
    )


def prepare_model(model: Any, max_length: int) -> str | None:
    """Make ``model`` train on packed batches; returns why it cannot (then it is unchanged).

    Picks the attention for packed rows (:func:`packed_attention`), turns the KV cache off in
    training forward passes, then checks the packed logits against unpacked ones.
    """
    reason = unsupported_reason(model, max_length)
    if reason:
        return reason
    base = transformers_model(model)
    original = base.config._attn_implementation
    if packed_attention(original, cuda=_cuda_available()) == PER_EXAMPLE_SDPA:
        _register_per_example_sdpa()
        try:
            base.set_attn_implementation(PER_EXAMPLE_SDPA)
        except (ValueError, NotImplementedError) as exc:
            return f"its attention cannot be switched to per-example sdpa ({first_line(exc)})"
        if base.config._attn_implementation != PER_EXAMPLE_SDPA:
            return f"{type(base).__name__} does not use transformers' AttentionInterface"
    disable_cache_in_training(model)
    sharded = sharded_weights_reason()
    if sharded:
        # Every rank decides the same way without a forward pass; the static checks above
        # still apply, and the attention is the one the probe accepts in unsharded runs.
        logger.warning("Sample packing without its packed-logits check: %s.", sharded)
        return None
    reason = check_model(model, original)
    if reason and base.config._attn_implementation != original:
        base.set_attn_implementation(original)
    return reason


def packed_attention(original: str, *, cuda: bool) -> str:
    """The attention implementation packed batches run with, given the model's own."""
    if original in VARLEN_ATTENTION or (cuda and original == "sdpa"):
        return original  # the varlen kernels, or transformers' packed mask in one sdpa kernel
    return PER_EXAMPLE_SDPA


def _cuda_available() -> bool:
    """Where training will run: the model is still on the CPU when the collator is built."""
    import torch

    return bool(torch.cuda.is_available())


def sharded_weights_reason() -> str | None:
    """Why no forward pass can run on the model before training (ZeRO-3, FSDP), or None.

    Under ZeRO-3 the weights are partitioned as they load (each rank holds a slice, gathered
    only inside DeepSpeed's engine): the probe cannot run anywhere. Under an accelerate FSDP
    launch, memory-efficient loading (``cpu_ram_efficient_loading``) leaves the weights on
    the meta device on all ranks but the first: the probe would pass on one rank and fail on
    the others, and the ranks would disagree about packing. Both are decided from the
    environment, the same on every rank.
    """
    import os

    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        return "DeepSpeed ZeRO-3 partitions the weights until training starts"
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true", "yes"):
        return "under FSDP the weights may be loaded on one rank only until training starts"
    return None


def unsupported_reason(model: Any, max_length: int) -> str | None:
    """Why packing cannot be used with this model, or None when it may (no forward pass)."""
    kind = prompt_learning(model)
    if kind:
        return f"{kind} prepends virtual tokens that packed position ids do not cover"
    config = transformers_model(model).config
    window = getattr(config, "sliding_window", None)
    if window and getattr(config, "use_sliding_window", True) and max_length > window:
        # Per-example attention has no window; the probe's short sequences would not show it.
        return f"sliding-window attention ({window} tokens) is shorter than max_length {max_length}"
    return None


def disable_cache_in_training(model: Any) -> None:
    """Pass ``use_cache=False`` to every forward pass that computes a loss.

    With a cache, transformers' mask code ignores packed position ids (attention would cross
    examples); training never reads the cache anyway. Generation passes no labels, so it
    keeps its cache.
    """
    if getattr(model, "_lfm_no_cache_hook", False):
        return

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if "labels" in kwargs and kwargs.get("use_cache") is None:
            return args, {**kwargs, "use_cache": False}
        return None

    model.register_forward_pre_hook(hook, with_kwargs=True)
    model._lfm_no_cache_hook = True


def check_model(model: Any, reference_attention: str) -> str | None:
    """Compare the logits of two short sequences packed and alone; a reason when they differ.

    The sequences alone run with ``reference_attention`` (the model's own), packed with the
    attention :func:`prepare_model` set. Runs without gradients, in eval mode.
    """
    import torch

    base = transformers_model(model)
    packed_attention = base.config._attn_implementation
    first, second = [5, 9, 3, 7, 2], [4, 8, 6]  # ids under 10 exist in every vocabulary
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            base.set_attn_implementation(reference_attention)
            alone = [
                _logits(model, {"input_ids": torch.tensor([ids])}, device)
                for ids in (first, second)
            ]
            base.set_attn_implementation(packed_attention)
            batch = collator()([{"input_ids": ids} for ids in (first, second)])
            batch.pop("labels")
            packed = _logits(model, batch, device)
    except Exception as exc:  # any failure means: do not pack this model
        return f"a packed test batch failed to run ({type(exc).__name__}: {first_line(exc)})"
    finally:
        base.set_attn_implementation(packed_attention)
        model.train(was_training)
    expected = torch.cat(alone).float()
    # Half precision differs in the last bits between the two layouts; leakage is far larger.
    tolerance = 1e-3 if packed.dtype == torch.float32 else 5e-2
    error = (packed.float() - expected).abs().max().item() / max(expected.abs().max().item(), 1.0)
    if error > tolerance:
        return f"its packed logits differ from unpacked ones by {error:.2g} (attention crosses examples)"
    return None


def _logits(model: Any, batch: dict[str, Any], device: Any) -> Any:
    inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
    return model(**inputs, use_cache=False).logits[0]


def per_example_sdpa(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: Any = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' sdpa attention, once per packed example (``cu_seq_lens_q`` bounds)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1:  # not a packed batch: plain sdpa
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    bounds = cu_seq_lens_q.tolist()
    outputs = [
        sdpa_attention_forward(
            module,
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            None,
            dropout=dropout,
            scaling=scaling,
            is_causal=True,
        )[0]
        for start, end in zip(bounds[:-1], bounds[1:], strict=False)
    ]
    return torch.cat(outputs, dim=1), None


def _register_per_example_sdpa() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(PER_EXAMPLE_SDPA, per_example_sdpa)
