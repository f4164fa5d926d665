"""Trainer glue for ``train.py``: seeding, precision, resume, metrics, saving."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .errors import RuntimeConfigError

PathLike = str | os.PathLike[str]
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
METRICS_FILE = "metrics.json"
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
    if precision == "bf16" and not bf16_ok:
        raise RuntimeConfigError(
            "fine_tuning.training.precision 'bf16' needs a CUDA GPU with bf16 support (Ampere or "
            "newer); set precision to 'auto' or 'fp32'"
        )
    if precision == "fp16" and not cuda:
        raise RuntimeConfigError(
            "fine_tuning.training.precision 'fp16' needs a CUDA GPU; set precision to 'auto' or "
            "'fp32'"
        )
    return precision == "bf16", precision == "fp16"


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


def last_checkpoint(output_dir: PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` directory in ``output_dir``, or None.

    A run killed mid-save leaves a checkpoint without a readable trainer state;
    resuming from it would crash, so it is skipped in favour of the previous one.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    candidates = sorted(
        (int(match.group(1)), path)
        for path in root.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    )
    for _, path in reversed(candidates):
        if _is_complete(path):
            _announce(f"Resuming training from checkpoint {path}")
            return str(path)
        _announce(f"Skipping incomplete checkpoint {path} (no readable {_STATE_FILE})")
    return None


def _announce(message: str) -> None:
    """Tell the user (once, from the main process) what a restarted run is doing."""
    if os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0":
        print(f"[lfm] {message}", file=sys.stderr, flush=True)


def _is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / _STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


class MetricsCallback(TrainerCallback):
    """Write ``metrics.json`` (loss curve, eval losses, throughput) when training ends.

    Steps come from the Trainer's ``log_history``, which is restored on resume, so a
    resumed run's file covers every step. ``num_input_tokens_seen`` is the Trainer's
    own count: it includes padding unless TrainingArguments sets
    ``include_num_input_tokens_seen="non_padding"``; ``token_count_mode`` records which.
    """

    def __init__(self, output_dir: PathLike) -> None:
        self.output_dir = Path(output_dir)
        self._started = 0.0
        self._tokens_at_start = 0
        self._step_at_start = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer restores a checkpoint's state before this hook: count this session only.
        self._started = time.perf_counter()
        self._tokens_at_start = state.num_input_tokens_seen or 0
        self._step_at_start = state.global_step

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        path = self.output_dir / METRICS_FILE
        if state.global_step == self._step_at_start and path.exists():
            return  # restarted after the run had finished: keep the real run's numbers
        metrics = self._collect(args, state)
        _write_json_atomic(path, metrics)

    def _collect(self, args: Any, state: Any) -> dict[str, Any]:
        history = state.log_history
        steps = [_step_entry(e) for e in history if "loss" in e]
        evals = [
            {"step": e.get("step"), "epoch": e.get("epoch"), "eval_loss": e["eval_loss"]}
            for e in history
            if "eval_loss" in e
        ]
        runtime = _last_value(history, "train_runtime")
        if runtime is None:
            runtime = time.perf_counter() - self._started
        mode = getattr(args, "include_num_input_tokens_seen", "no")
        tokens = state.num_input_tokens_seen if mode not in ("no", False) else None
        session_tokens = None if tokens is None else tokens - self._tokens_at_start
        return {
            "steps": steps,
            "eval": evals,
            "global_step": state.global_step,
            "final_loss": steps[-1]["loss"] if steps else None,
            "train_runtime": runtime,
            "num_input_tokens_seen": tokens,
            "token_count_mode": "all" if mode is True else str(mode),
            "tokens_per_second": (
                session_tokens / runtime if session_tokens is not None and runtime > 0 else None
            ),
        }


def _step_entry(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("step", "epoch", "loss", "learning_rate", "grad_norm")
    return {key: entry.get(key) for key in keys}


def _last_value(history: list[dict[str, Any]], key: str) -> Any:
    return next((e[key] for e in reversed(history) if key in e), None)


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write via a temp file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_outputs(trainer: Any, tokenizer: Any, output_dir: PathLike) -> None:
    """Save the trained model (just the adapter for PEFT) and tokenizer to ``output_dir``."""
    # save_model writes on the main process only and handles PEFT/FSDP/DeepSpeed cases.
    trainer.save_model(str(output_dir))
    if trainer.args.should_save:
        tokenizer.save_pretrained(str(output_dir))


def release_memory() -> None:
    """Return freed tensors' memory (between adapters trained one after another)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
