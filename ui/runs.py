"""A training run as its files tell it: metrics.jsonl (live), metrics.json (the summary),
alerts.jsonl, checkpoints' trainer_state.json (eval loss while training), and the bundle's
lfm.lock.json (the resolved config and the reasons for each value, as `lfm explain` gives)."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import (
    ALERTS_FILE,
    LOCK_FILE,
    STEPS_FILE,
    SUMMARY_FILE,
    Unreadable,
    finite,
    ident,
    label,
    optional_json,
    read_json,
    read_regular,
    regular_folder,
    scan,
)
from .web import Problem

MAX_CHUNK_BYTES = 4 << 20  # per poll: a long run's history arrives over a few polls
MAX_LINE_BYTES = 1 << 20
MAX_ALERTS = 200
MAX_ALERT_BYTES = 1 << 20  # the end of alerts.jsonl: the newest alerts, read on every /runs load
MAX_TAIL_BYTES = 64 << 10  # the end of metrics.jsonl, for a run list's last step
MAX_EVAL_BYTES = 1 << 20  # the end of evals.jsonl: thousands of evaluations
EVALS_FILE = "evals.jsonl"  # lfm.runtime.metrics.EVALS_FILE
QUIET_SECONDS = 120  # no new step for this long and no summary: the run stopped unfinished
CHART_KEYS = ("step", "loss", "learning_rate", "tokens_per_second", "grad_norm", "epoch")


@dataclass(frozen=True)
class Run:
    id: str
    output: Path  # the folder train.py writes (output_dir)
    bundle: Path | None  # the bundle it belongs to (holds lfm.lock.json)
    label: str


def all_runs(root: Path) -> list[Run]:
    runs = [_run(root, output) for output in scan(root).runs]
    return sorted(runs, key=lambda r: r.label)


_known: dict[tuple[Path, str], Run] = {}  # run id -> run: the live page polls find()
_known_lock = threading.Lock()


def find(root: Path, run_id: str) -> Run:
    with _known_lock:
        hit = _known.get((root, run_id))
    if hit is not None and regular_folder(hit.output):
        return hit
    for run in all_runs(root):
        if run.id == run_id:
            with _known_lock:
                _known[(root, run_id)] = run
            return run
    raise Problem(404, "no such run under the runs folder (it may have been moved)")


def _run(root: Path, output: Path) -> Run:
    bundle = next((d for d in (output, output.parent) if _is_regular(d / LOCK_FILE)), None)
    shown = bundle if bundle is not None and bundle != root else output
    return Run(ident(root, output), output, bundle, label(root, shown))


def status(run: Run) -> str:
    """finished, stopped by an alert, running, not started, or stopped (unfinished)."""
    steps, summary = run.output / STEPS_FILE, run.output / SUMMARY_FILE
    last_step = _mtime(steps)
    if _is_regular(summary) and _mtime(summary) >= last_step:
        data = optional_json(summary)
        return (
            "stopped by alert"
            if isinstance(data, dict) and data.get("stopped_by_alert")
            else "finished"
        )
    if not _is_regular(steps):
        return "not started"
    return "running" if time.time() - last_step < QUIET_SECONDS else "stopped"


def summary(run: Run) -> dict[str, Any]:
    data = optional_json(run.output / SUMMARY_FILE)
    return finite(data) if isinstance(data, dict) else {}


def read_steps(run: Run, offset: int, identity: str = "") -> dict[str, Any]:
    """The logged steps after byte ``offset`` of metrics.jsonl, the offset to ask from next, and
    the file's identity to send back with it.

    Only whole lines are read (a line being written is left for the next poll); a line longer
    than MAX_LINE_BYTES is skipped, so the offset always moves. A rewritten file (a resumed run
    drops the steps after its checkpoint by writing a new file and renaming it over the old) has
    another identity, or is shorter than ``offset``: the answer then starts again from the
    beginning, with ``reset``.
    """
    path = run.output / STEPS_FILE
    try:
        probe = read_regular(path, 0)
    except Unreadable:
        return {"points": [], "offset": 0, "identity": "", "reset": offset > 0}
    reset = offset < 0 or offset > probe.size or bool(identity and identity != probe.identity)
    start = 0 if reset else offset
    try:
        found = read_regular(path, MAX_CHUNK_BYTES, start)
    except Unreadable:
        return {"points": [], "offset": 0, "identity": "", "reset": offset > 0}
    if found.identity != probe.identity:  # replaced between the two opens: from the start
        return {"points": [], "offset": 0, "identity": "", "reset": True}
    chunk = found.data
    end = chunk.rfind(b"\n") + 1
    points: list[dict[str, Any]] = []
    for line in chunk[:end].splitlines():
        if len(line) <= MAX_LINE_BYTES:
            points += _point(line)
    if end == 0 and len(chunk) == MAX_CHUNK_BYTES:
        end = len(chunk)  # one line longer than a whole chunk: skip past it, never stall on it
        skipping = True
    else:
        skipping = False
    answer_offset = start + end
    if skipping:
        answer_offset = _past_line(path, answer_offset, found.identity)
    return {
        "points": finite(points),
        "offset": answer_offset,
        "identity": found.identity,
        "reset": reset,
    }


def _past_line(path: Path, offset: int, identity: str) -> int:
    """The offset after the newline that ends the over-long line running through ``offset``
    (looked for a chunk at a time, at most a few per poll), or as far as was looked."""
    for _ in range(4):
        try:
            found = read_regular(path, MAX_CHUNK_BYTES, offset)
        except Unreadable:
            return offset
        if found.identity != identity or not found.data:
            return offset
        newline = found.data.find(b"\n")
        if newline != -1:
            return offset + newline + 1
        offset += len(found.data)
    return offset


def _point(line: bytes) -> list[dict[str, Any]]:
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return []  # a damaged line is skipped, the rest of the run still shows
    if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
        return []
    return [{key: _number(entry.get(key)) for key in CHART_KEYS}]


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def eval_losses(run: Run) -> list[dict[str, Any]]:
    """Eval loss by step: the summary's; while training, evals.jsonl (written at each
    evaluation), or for runs from before it, the newest checkpoint's log."""
    done = summary(run).get("eval")
    if isinstance(done, list):
        return [e for e in done if isinstance(e, dict)]
    live = _evals_so_far(run)
    if live is not None:
        return live
    checkpoints = sorted(
        (
            p
            for p in run.output.glob("checkpoint-*")
            if p.name.removeprefix("checkpoint-").isdigit() and regular_folder(p)
        ),
        key=lambda p: int(p.name.removeprefix("checkpoint-")),
    )
    if not checkpoints:
        return []
    state = optional_json(checkpoints[-1] / "trainer_state.json")
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        return []
    return finite(
        [
            {"step": e.get("step"), "epoch": e.get("epoch"), "eval_loss": e["eval_loss"]}
            for e in history
            if isinstance(e, dict) and "eval_loss" in e
        ]
    )


def _evals_so_far(run: Run) -> list[dict[str, Any]] | None:
    """evals.jsonl's entries (the newest ``MAX_EVAL_BYTES``), None when there is no such file."""
    try:
        found = read_regular(run.output / EVALS_FILE, MAX_EVAL_BYTES, tail=True)
    except Unreadable:
        return None
    lines = found.data.splitlines()[1 if found.start > 0 else 0 :]  # a tail cuts its first
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(entry, dict) and _number(entry.get("eval_loss")) is not None:
            entries.append({k: entry.get(k) for k in ("step", "epoch", "eval_loss")})
    return finite(entries)


def alerts(run: Run) -> list[dict[str, Any]]:
    """The newest alerts (the end of alerts.jsonl, whole lines only)."""
    try:
        found = read_regular(run.output / ALERTS_FILE, MAX_ALERT_BYTES, tail=True)
    except Unreadable:
        return []
    lines = found.data.splitlines()
    if found.start > 0 and lines:
        lines = lines[1:]  # the first line was cut by the tail
    entries = []
    for line in lines[-MAX_ALERTS:]:
        try:
            entry = json.loads(line)
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(entry, dict):
            entries.append(finite(entry))
    return entries


def lock(run: Run) -> tuple[dict[str, Any] | None, str | None]:
    """The bundle's lock file (resolved config, decisions), or why it cannot be shown."""
    if run.bundle is None:
        return None, "no lfm.lock.json beside this output: not compiled by lfm, or moved"
    try:
        data = read_json(run.bundle / LOCK_FILE)
    except Unreadable as exc:
        return None, str(exc)
    if not isinstance(data, dict):
        return None, f"{LOCK_FILE}: not a JSON object"
    return data, None


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def last_point(run: Run) -> dict[str, Any] | None:
    """The newest logged step, read from the end of metrics.jsonl (a run list stays fast)."""
    try:
        tail = read_regular(run.output / STEPS_FILE, MAX_TAIL_BYTES, tail=True).data
    except Unreadable:
        return None
    for line in reversed(tail.splitlines()):
        found = _point(line)
        if found:
            return finite(found[0])
    return None
