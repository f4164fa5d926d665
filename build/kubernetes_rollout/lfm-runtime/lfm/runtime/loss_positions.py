"""Logits only where the loss reads them: the output layer skips the prompt tokens.

A causal LM's loss reads the logits of the positions whose next token has a label; with the
prompt masked out (``train_on_inputs: false``, the default) that is the response alone, and
packed batches also drop each example's first position. Yet the model computes logits for
every position: a ``hidden x vocab`` matrix product per token, and a ``tokens x vocab`` float32
tensor (and its gradient) in memory, which for a large vocabulary is the biggest activation of
the step. transformers' ``logits_to_keep`` argument takes the positions to project; so:

- :func:`with_loss_positions` wraps the batch collator: each batch gets ``LOSS_POSITIONS``,
  the sequence positions where any row has a label for the next token (computed on the host,
  in the collator, so the step reads nothing back from the GPU);
- :func:`compute_loss` (called by :class:`.checkpoints.Trainer`) runs the model with
  ``logits_to_keep`` set to those positions and hands transformers' own loss function the
  labels that follow them (``shift_labels``), with the Trainer's ``num_items_in_batch``. The
  same terms are summed and divided by the same count, so the loss is the one the model would
  have computed; :func:`check_model` measures that on a short batch before training.

Not used for prompt learning (virtual tokens shift every position) or a model whose forward
takes no ``logits_to_keep``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import first_line
from .labeling import IGNORE_INDEX
from .modeling import prompt_learning, transformers_model

logger = logging.getLogger(__name__)
LOSS_POSITIONS = "lfm_loss_positions"


def prepare(model: Any, collator: Callable[..., Any]) -> Callable[..., Any]:
    """``collator`` with loss positions when ``model`` computes the same loss with them."""
    from .packing import sharded_weights_reason

    reason = unsupported_reason(model)
    if reason:  # a known limit, nothing wrong: say it quietly
        logger.info("Logits for every position: %s.", reason)
        return collator
    reason = None if sharded_weights_reason() else check_model(model)
    if reason:
        logger.warning("Logits for every position (the loss needs only some): %s.", reason)
        return collator
    return with_loss_positions(collator)


def unsupported_reason(model: Any) -> str | None:
    """Why the model cannot take loss positions, or None (no forward pass)."""
    kind = prompt_learning(model)
    if kind:
        return f"{kind} prepends virtual tokens, which shift every position"
    base = transformers_model(model)
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return f"{type(base).__name__}.forward takes no logits_to_keep"
    if not callable(getattr(base, "loss_function", None)):
        return f"{type(base).__name__} has no loss_function"
    return None


def with_loss_positions(collator: Callable[..., Any]) -> LossPositionsCollator:
    return LossPositionsCollator(collator)


@dataclass(frozen=True)
class LossPositionsCollator:
    """``inner``'s batches, each with its ``LOSS_POSITIONS`` when it has any label."""

    inner: Callable[..., Any]

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        positions = loss_positions(batch["labels"]) if "labels" in batch else None
        if positions is not None:
            batch[LOSS_POSITIONS] = positions
        return batch


def loss_positions(labels: Any) -> Any:
    """The positions whose next token has a label in any row (a 1-D tensor), or None if none."""
    has_target = (labels[:, 1:] != IGNORE_INDEX).any(dim=0)
    positions = has_target.nonzero().squeeze(-1)  # on the host: the collator's CPU tensors
    return positions if positions.numel() else None


def compute_loss(
    model: Any,
    inputs: dict[str, Any],
    positions: Any,
    loss_function: Callable[..., Any],
    num_items_in_batch: Any = None,
) -> Any:
    """The causal-LM loss from the logits at ``positions`` only (see the module docstring).

    ``model`` is what the Trainer calls (perhaps wrapped for DDP or DeepSpeed);
    ``loss_function`` the unwrapped transformers model's own.
    """
    labels = inputs.pop("labels")
    # No labels reach the model, so say use_cache=False here: with a cache, transformers would
    # ignore packed position ids (packing's own hook keys on the labels).
    outputs = model(**inputs, logits_to_keep=positions, use_cache=False)
    logits = outputs.logits
    targets = labels[:, positions + 1]
    return loss_function(
        logits=logits,
        labels=None,
        vocab_size=logits.shape[-1],
        num_items_in_batch=num_items_in_batch,
        shift_labels=targets,
    )


def check_model(model: Any) -> str | None:
    """Compare the loss from loss positions with the model's own on a short batch."""
    import torch

    ids = [[5, 9, 3, 7, 2, 6], [4, 8, 6, 3, 0, 0]]  # ids under 10 exist in every vocabulary
    labels = [
        [IGNORE_INDEX, IGNORE_INDEX, 3, 7, 2, 6],
        [IGNORE_INDEX, 8, 6, 3] + [IGNORE_INDEX] * 2,
    ]
    device = next(model.parameters()).device
    batch = {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": torch.tensor([[1] * 6, [1] * 4 + [0] * 2], device=device),
        "labels": torch.tensor(labels, device=device),
    }
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(**batch, use_cache=False).loss
            positions = loss_positions(batch["labels"].cpu()).to(device)
            got = compute_loss(
                model, dict(batch), positions, transformers_model(model).loss_function
            )
    except Exception as exc:  # any failure means: compute every position's logits
        return f"a test batch failed with loss positions ({type(exc).__name__}: {first_line(exc)})"
    finally:
        model.train(was_training)
    # In half precision the two output-layer products may round differently (other GEMM
    # shapes); a misplaced position changes the loss far more than either tolerance.
    head = transformers_model(model).get_output_embeddings()
    full_precision = getattr(getattr(head, "weight", None), "dtype", None) == torch.float32
    tolerance = 1e-5 if full_precision else 1e-2
    error = abs(got.item() - expected.item()) / max(abs(expected.item()), 1.0)
    if error > tolerance:
        return f"its loss from loss positions differs from its own by {error:.2g}"
    return None
