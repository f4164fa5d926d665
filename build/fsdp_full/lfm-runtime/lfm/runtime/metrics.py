"""Per-step metrics: ``metrics.jsonl`` while training, ``metrics.json`` when it ends.

Tokens are counted where the model sees them, with a forward pre-hook on the training
model (so dataloader workers, packing and padding are all counted the same way): real tokens
(not padding) and total tokens (the tensor's size), with no per-step read back from the GPU. Their ratio is the token efficiency, the
share of the compute spent on data rather than padding.

Each logging step appends one JSON line: step, epoch, loss, learning rate, grad norm, real
and total tokens since the last line, tokens per second, token efficiency and memory (peak
GPU memory allocated on CUDA, the process's resident memory on a CPU).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

PathLike = str | os.PathLike[str]
METRICS_FILE = "metrics.json"
STEPS_FILE = "metrics.jsonl"
EVALS_FILE = "evals.jsonl"  # one line per evaluation during training: live eval-loss curves
# What TRL's preference trainers log per step, kept in metrics.jsonl as they name it: the
# implicit rewards of the chosen and rejected completions, their margin and how often the
# chosen one wins, log-probabilities, KTO's KL estimate, ORPO's odds ratio and NLL.
PREFERENCE_LOGS = ("rewards/", "logps/", "kl", "log_odds_", "nll_loss")
# What a log line adds to the Trainer's own figures (loss, learning rate, grad norm).
_TRACKED = (
    "tokens_per_second",
    "token_efficiency",
    "rss_mb",
    "gpu_allocated_mb",
    "gpu_peak_mb",
)


class TokenCounter:
    """Counts the real and total tokens of training forward passes (a forward pre-hook).

    Totals are tensor sizes, known on the host. A padded batch's real tokens are the sum of
    its attention mask, which lives on the GPU by then: the sums accumulate there and are
    read back only when :attr:`real` is asked for (at logging steps), so counting never makes
    a step wait for the GPU.
    """

    def __init__(self) -> None:
        self.total = 0
        self._real = 0
        self._pending: Any = None  # a device tensor: mask sums not yet read back
        self._handle: Any = None

    @property
    def real(self) -> int:
        if self._pending is not None:
            self._real += int(self._pending)
            self._pending = None
        return self._real

    def attach(self, model: Any) -> None:
        if self._handle is None:
            self._handle = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _count(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # input_ids by name, or first and positional (as TRL's ORPO and CPO trainers call it),
        # or in a features dict passed first (a SentenceTransformer's forward: one call per
        # column of a batch, anchor, positive and each negative)
        if args and isinstance(args[0], Mapping):
            if not _grad_enabled():
                return  # a cached loss's first pass (GradCache); the pass that trains counts
            kwargs = {**args[0], **kwargs}
        ids = kwargs.get("input_ids")
        if ids is None and args and hasattr(args[0], "numel"):
            ids = args[0]
        if not module.training or ids is None:
            return
        total = int(ids.numel())
        self.total += total
        mask = kwargs.get("attention_mask")
        if mask is not None and getattr(mask, "dim", lambda: 0)() == 2:  # padded; packed has none
            batch_real = mask.sum()
            self._pending = batch_real if self._pending is None else self._pending + batch_real
        else:
            self._real += total


def _grad_enabled() -> bool:
    import torch

    return bool(torch.is_grad_enabled())


class MetricsCallback(TrainerCallback):
    """Write ``metrics.jsonl`` at every log and ``metrics.json`` (the summary) at the end.

    Steps come from the Trainer's ``log_history``, which is restored on resume, so a
    resumed run's files cover every step; lines a killed run wrote after its last
    checkpoint are dropped when the run resumes from that checkpoint.
    """

    def __init__(self, output_dir: PathLike) -> None:
        self.output_dir = Path(output_dir)
        self.tokens = TokenCounter()
        self._started = 0.0
        self._step_at_start = 0
        self._evaluated_at: int | None = None  # the step of the last line in evals.jsonl
        self._last = (0.0, 0, 0)  # time, real, total at the previous log
        self._clock_waits = False  # for the first epoch of this session

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer restores a checkpoint's state before this hook: count this session only.
        self._start_clock()
        self._clock_waits = True
        self._step_at_start = state.global_step
        if kwargs.get("model") is not None:
            self.tokens.attach(kwargs["model"])
        if state.is_world_process_zero:
            _truncate_after(self.output_dir / STEPS_FILE, state.global_step)
            _truncate_after(self.output_dir / EVALS_FILE, state.global_step)
        _reset_peak_memory()

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Start again once every callback has begun: lfm's Trainer runs this one first, and a
        # tracker's setup (W&B's login, MLflow's run) would otherwise count as step time.
        if self._clock_waits:
            self._start_clock()
            self._clock_waits = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The last step is always logged: metrics.jsonl ends where the run ends, and its final
        # loss is the last step's whatever logging_steps is.
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_log = True

    def _start_clock(self) -> None:
        self._started = time.perf_counter()
        _, real, total = self._last
        self._last = (self._started, real, total)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        scores = {
            k: v
            for k, v in (logs or {}).items()
            if k.startswith("eval")
            and (k.endswith("loss") or k.removeprefix("eval_").startswith(PREFERENCE_LOGS))
        }
        if scores and state.is_world_process_zero and state.global_step != self._evaluated_at:
            # eval_loss, or eval_NAME_loss for each of several eval sets (and a preference
            # trainer's held-out rewards); a final evaluate() at the step of the last one is
            # not a new point.
            self._evaluated_at = state.global_step
            entry = {"step": state.global_step, "epoch": logs.get("epoch", state.epoch)}
            _append_line(self.output_dir / EVALS_FILE, {**entry, **scores})
        if not logs or "loss" not in logs:
            return
        now = time.perf_counter()
        real, total = _all_processes(self.tokens.real, self.tokens.total)
        then, real_before, total_before = self._last
        self._last = (now, real, total)
        if not state.is_world_process_zero:
            return
        entry = {
            "step": state.global_step,
            "epoch": logs.get("epoch", state.epoch),
            "loss": logs.get("loss"),
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens": real - real_before,
            "total_tokens": total - total_before,
            "tokens_per_second": (real - real_before) / (now - then) if now > then else None,
            "token_efficiency": _ratio(real - real_before, total - total_before),
            "elapsed_seconds": round(now - self._started, 3),
            **memory_now(),
            **{key: value for key, value in logs.items() if key.startswith(PREFERENCE_LOGS)},
        }
        _append_line(self.output_dir / STEPS_FILE, entry)
        # Into the log too, for the progress display and the trackers (TensorBoard, W&B,
        # MLflow): lfm's Trainer runs this callback before theirs.
        logs.update(
            (key, round(value, 4) if key == "token_efficiency" else round(value, 1))
            for key, value in entry.items()
            if key in _TRACKED and value is not None
        )

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        real, total = _all_processes(self.tokens.real, self.tokens.total)
        self.tokens.detach()
        if not state.is_world_process_zero:
            return
        path = self.output_dir / METRICS_FILE
        if state.global_step == self._step_at_start and path.exists():
            return  # restarted after the run had finished: keep the real run's numbers
        write_json_atomic(path, self._summary(state, real, total))

    def _summary(self, state: Any, real: int, total: int) -> dict[str, Any]:
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
        return {
            "steps": steps,
            "eval": evals,
            "global_step": state.global_step,
            "final_loss": steps[-1]["loss"] if steps else None,
            "train_runtime": runtime,
            # This session's tokens (a resumed run counts from its restart).
            "num_input_tokens_seen": real,
            "num_total_tokens": total,
            "token_count_mode": "non_padding",
            "token_efficiency": _ratio(real, total),
            "tokens_per_second": real / runtime if runtime > 0 else None,
            "total_tokens_per_second": total / runtime if runtime > 0 else None,
            **peak_memory(),
            "versions": versions_that_ran(),
        }


# The distributions whose versions decide what a run computes, when they are installed.
_RECORDED = (
    "torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "tokenizers",
    "bitsandbytes", "deepspeed", "liger-kernel",
)  # fmt: skip


def versions_that_ran() -> dict[str, str]:
    """Python, lfm's runtime, CUDA and the libraries of this process, read as it runs (a
    bundle pins versions, but a box may run others): the lineage the registry records."""
    import platform
    from importlib import metadata

    import torch

    from . import __version__

    found = {"python": platform.python_version(), "lfm-runtime": __version__}
    for name in _RECORDED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if torch.version.cuda:
        found["cuda"] = torch.version.cuda
    return found


def memory_now() -> dict[str, float]:
    """Memory in MiB: GPU allocated (now and peak) on CUDA, resident set size on a CPU."""
    import psutil
    import torch

    out = {"rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1)}
    if torch.cuda.is_available():
        out["gpu_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        out["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def peak_memory() -> dict[str, float]:
    """The run's peak: resident set size (the process's lifetime) and GPU peak allocated."""
    import resource

    import torch

    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        out["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _all_processes(real: int, total: int) -> tuple[int, int]:
    """Sum the counters over all processes of a distributed run (every rank calls this)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return real, total
    device = (
        torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
    )
    counts = torch.tensor([real, total], dtype=torch.int64, device=device)
    dist.all_reduce(counts)
    return int(counts[0]), int(counts[1])


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _step_entry(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("step", "epoch", "loss", "learning_rate", "grad_norm")
    return {key: entry.get(key) for key in keys}


def _last_value(history: list[dict[str, Any]], key: str) -> Any:
    return next((e[key] for e in reversed(history) if key in e), None)


def _append_line(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def _truncate_after(path: Path, step: int) -> None:
    """Drop lines past ``step`` (a killed run's steps after its last checkpoint), atomically."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if entry.get("step", 0) <= step:
            kept.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write via a temp file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
