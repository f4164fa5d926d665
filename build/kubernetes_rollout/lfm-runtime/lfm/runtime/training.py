"""Trainer glue for ``train.py``: seeding, precision, resume, callbacks, saving."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from . import resume
from .alerts import AlertCallback
from .checkpoints import Trainer
from .errors import RuntimeConfigError
from .launch import announce
from .metrics import METRICS_FILE, MetricsCallback
from .progress import show_progress
from .quiet import quiet_third_party
from .trackers import check as check_trackers

quiet_third_party()

# What train.py uses from the callback and tracker modules, under one name.
__all__ = [
    "METRICS_FILE",
    "AlertCallback",
    "MetricsCallback",
    "Trainer",
    "check_trackers",
    "show_progress",
]
ATTENTIONS = ("auto", "sdpa", "flash_attention_2", "eager")

PathLike = str | os.PathLike[str]
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
# The Trainer writes trainer_state.json last, so its presence marks a finished save.
_STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for a reproducible run."""
    from transformers import set_seed

    set_seed(seed)


def choose_precision(precision: str) -> tuple[bool, bool]:
    """Return ``(bf16, fp16)`` flags for TrainingArguments from the config's precision."""
    import torch
    from transformers.utils import is_torch_bf16_gpu_available

    if precision not in PRECISIONS:
        raise RuntimeConfigError(
            f"fine_tuning.training.precision {precision!r} is not supported; use one of "
            f"{', '.join(PRECISIONS)}"
        )
    cuda = torch.cuda.is_available()
    bf16_ok = cuda and is_torch_bf16_gpu_available()
    if precision == "auto":
        return (True, False) if bf16_ok else (False, cuda)
    # Not "set precision to auto": a DeepSpeed bundle compiled from precision auto states bf16
    # (or fp16) itself, and recompiling it with auto would choose the same again.
    on_cpu = (
        "on a CPU set fine_tuning.training.precision: fp32 (DeepSpeed bundles state their "
        "precision when compiled)"
    )
    if precision == "bf16" and not bf16_ok:
        raise RuntimeConfigError(
            "fine_tuning.training.precision 'bf16' needs a CUDA GPU with bf16 support (Ampere or "
            "newer); "
            + ("this GPU has none: set fine_tuning.training.precision: fp16" if cuda else on_cpu)
        )
    if precision == "fp16" and not cuda:
        raise RuntimeConfigError(
            f"fine_tuning.training.precision 'fp16' needs a CUDA GPU; {on_cpu}"
        )
    return precision == "bf16", precision == "fp16"


def choose_attention(attention: str) -> str:
    """The ``attn_implementation`` to load the model with; ``auto`` picks for this machine."""
    import importlib.util

    import torch

    if attention not in ATTENTIONS:
        raise RuntimeConfigError(
            f"fine_tuning.training.attention {attention!r} is not supported; use one of "
            f"{', '.join(ATTENTIONS)}"
        )
    flash = torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None
    if attention == "flash_attention_2" and not flash:
        raise RuntimeConfigError(
            "fine_tuning.training.attention 'flash_attention_2' needs a CUDA GPU and the "
            "flash-attn package (pip install flash-attn); set attention to 'auto' or 'sdpa'"
        )
    if attention == "auto":
        attention = "flash_attention_2" if flash else "sdpa"
        announce(f"Attention: {attention} (attention: auto)")
    return attention


def weights_dtype(bf16: bool, fp16: bool, *, trains_all_weights: bool) -> str:
    """The dtype to load the base model's weights in, for ``modeling.load_model(dtype=...)``.

    Weights that train stay fp32 (mixed precision keeps fp32 master weights and computes in
    half precision); a frozen base under an adapter is loaded in half precision to save memory.
    On a CPU (neither flag) everything is fp32.
    """
    if trains_all_weights or not (bf16 or fp16):
        return "float32"
    return "bfloat16" if bf16 else "float16"


def compute_dtype(bf16: bool, fp16: bool) -> Any:
    """The torch dtype QLoRA's 4-bit layers compute in: the run's half precision, else fp32."""
    import torch

    return torch.bfloat16 if bf16 else torch.float16 if fp16 else torch.float32


def resume_point(output_dir: PathLike, bundle_dir: PathLike) -> str | None:
    """Where a (re)started run begins: the newest complete checkpoint in ``output_dir``, or
    None (step 0). Checkpoints of another config than the bundle's are refused (see resume)."""
    checkpoint = _newest_complete(Path(output_dir))
    resume.check(Path(output_dir), Path(bundle_dir), checkpoint)
    if checkpoint:
        announce(f"Resuming training from checkpoint {checkpoint}")
    return checkpoint


def last_checkpoint(output_dir: PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` directory in ``output_dir``, or None."""
    checkpoint = _newest_complete(Path(output_dir))
    if checkpoint:
        announce(f"Resuming training from checkpoint {checkpoint}")
    return checkpoint


def _newest_complete(root: Path) -> str | None:
    """:class:`Trainer` renames only finished checkpoints into place; a checkpoint-N without a
    readable trainer state (written by another trainer, or damaged) is still skipped in
    favour of the previous one, since resuming from it would crash."""
    if not root.is_dir():
        return None
    candidates = sorted(
        (int(match.group(1)), path)
        for path in root.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    )
    for _, path in reversed(candidates):
        if _is_complete(path):
            return str(path)
        announce(f"Skipping incomplete checkpoint {path} (no readable {_STATE_FILE})")
    return None


def _is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / _STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def save_outputs(trainer: Any, tokenizer: Any, output_dir: PathLike) -> None:
    """Save the trained model (just the adapter for PEFT) and tokenizer to ``output_dir``.

    Raises :class:`~lfm.runtime.alerts.StoppedByAlert` (a ``RuntimeConfigError``: train.py
    prints it and exits 1) after saving when an alert with ``action: stop`` ended the run.
    """
    # save_model writes on the main process only and handles PEFT/FSDP/DeepSpeed cases.
    trainer.save_model(str(output_dir))
    if trainer.args.should_save:
        tokenizer.save_pretrained(str(output_dir))
    AlertCallback.raise_if_stopped(trainer, output_dir)  # a stopped run is not a success
    announce(_where_it_is(trainer, Path(output_dir)))


def _where_it_is(trainer: Any, output_dir: Path) -> str:
    """The run's closing line: where its result, metrics and checkpoints are."""
    what = "adapter" if hasattr(trainer.model, "peft_config") else "model"
    line = f"done: the trained {what} and its tokenizer are in {output_dir}/"
    try:
        loss = json.loads((output_dir / METRICS_FILE).read_text(encoding="utf-8"))["final_loss"]
        line += f"; metrics in {METRICS_FILE} (final loss {loss:.4f})"
    except (OSError, ValueError, KeyError, TypeError):
        line += f"; metrics in {METRICS_FILE}"
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda p: p.stat().st_mtime)
    if checkpoints:
        line += f"; checkpoints in checkpoint-* (newest: {checkpoints[-1].name})"
    return line


def release_memory() -> None:
    """Return freed tensors' memory (between adapters trained one after another)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
