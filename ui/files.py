"""Finding and reading what training, evaluation and dataset creation wrote, within bounds.

The folders given to `lfm ui` may hold anything, so every read goes through :func:`read_regular`:
it opens without following a link and without waiting on a FIFO, checks on the open descriptor
that it is a regular file, and reads an explicit number of bytes. A file that is not what it
should be is reported rather than raised, and links are never followed: a page shows what is
under the folder it was given, nothing else.

Why not lfm.runtime.inputs.read_bounded: it follows links (a user naming a linked config is
fine; a file found in a folder anyone may write to is not) and has no offset or tail; its
``size_text`` is reused for the messages.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfm.runtime.inputs import size_text

MAX_JSON_BYTES = 32 << 20
MAX_PICTURE_BYTES = 16 << 20  # a histogram or a chart PNG
# No link followed at the last step (a folder found by the walk is never a link); a FIFO opens
# at once instead of waiting for a writer, and fstat then refuses it.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
MAX_DEPTH = 6  # a bundle's output/eval/ is three levels below the folder holding bundles
MAX_ENTRIES = 50_000  # directory entries looked at per scan: a huge tree is cut short
SKIPPED_DIRS = {"node_modules", "__pycache__", "wandb", "mlruns", "lfm-runtime"}
SCAN_SECONDS = 2.0  # the live pages poll; one scan serves every request within this time

# File names written by the runtime and the dataset builder. Named here rather than imported:
# lfm.runtime.metrics imports transformers, and the UI must start in a fraction of a second.
STEPS_FILE = "metrics.jsonl"  # lfm.runtime.metrics.STEPS_FILE
SUMMARY_FILE = "metrics.json"  # lfm.runtime.metrics.METRICS_FILE
RUN_FILE = "lfm-run.json"  # what a run trains (lfm.runtime.resume)
ALERTS_FILE = "alerts.jsonl"  # lfm.runtime.alerts.ALERTS_FILE
EVAL_FILE = "eval_results.json"  # lfm.runtime.evaluation.results.RESULTS_FILE
LOCK_FILE = "lfm.lock.json"
REPORT_NAMES = ("dataset_report.json",)  # a folder dataset; a file dataset's is NAME.report.json


class Unreadable(ValueError):
    """A file the UI could not use; the message says which and why."""


@dataclass
class Found:
    runs: list[Path] = field(default_factory=list)  # training output folders
    evaluations: list[Path] = field(default_factory=list)  # eval_results.json files
    reports: list[Path] = field(default_factory=list)  # dataset report files
    truncated: bool = False


_cache: dict[Path, tuple[float, Found]] = {}
_cache_lock = threading.Lock()


def scan(root: Path) -> Found:
    """Everything under ``root`` (cached for a moment: live pages poll)."""
    with _cache_lock:
        hit = _cache.get(root)
        if hit and time.monotonic() - hit[0] < SCAN_SECONDS:
            return hit[1]
    found = _walk(root)
    with _cache_lock:
        _cache[root] = (time.monotonic(), found)
    return found


def _walk(root: Path) -> Found:
    found = Found()
    seen = 0
    for folder, dirs, files in os.walk(root):  # never follows links to folders
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        seen += len(dirs) + len(files)
        if seen > MAX_ENTRIES:
            found.truncated = True
            break
        dirs[:] = sorted(
            d
            for d in dirs
            if depth < MAX_DEPTH
            and not d.startswith(".")
            and not d.startswith("checkpoint-")
            and d not in SKIPPED_DIRS
        )
        names = set(files)
        if STEPS_FILE in names or RUN_FILE in names:
            found.runs.append(here)
        if EVAL_FILE in names and _regular(here / EVAL_FILE):
            found.evaluations.append(here / EVAL_FILE)
        found.reports += [
            here / n
            for n in sorted(names)
            if (n in REPORT_NAMES or n.endswith(".report.json")) and _regular(here / n)
        ]
    return found


def ident(root: Path, path: Path) -> str:
    """A short, URL-safe id for a file or folder under ``root`` (its relative path hashed)."""
    relative = path.relative_to(root).as_posix()
    return hashlib.sha256(relative.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def label(root: Path, path: Path) -> str:
    """How a page names a path: relative to the folder `lfm ui` was given."""
    relative = path.relative_to(root).as_posix()
    return relative if relative != "." else path.name


@dataclass(frozen=True)
class Read:
    data: bytes
    start: int  # the file offset ``data`` begins at
    size: int  # the file's size when it was opened
    identity: str  # device and inode: a file replaced by a rename has another


def read_regular(path: Path, limit: int, start: int = 0, *, tail: bool = False) -> Read:
    """At most ``limit`` bytes of the regular file ``path``, from byte ``start`` (or its last
    ``limit`` bytes with ``tail``). Unreadable (one line) for a link, a FIFO, a device, a
    folder or a file that cannot be opened."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable(f"{path.name}: a symbolic link (not followed)") from None
        raise Unreadable(f"{path.name}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{path.name}: not a regular file (a FIFO, device or folder)")
        if tail:
            start = max(0, info.st_size - limit)
        start = min(max(0, start), info.st_size)
        wanted = min(limit, info.st_size - start)
        parts: list[bytes] = []
        got = 0
        while got < wanted:  # pread may return less than asked
            part = os.pread(fd, wanted - got, start + got)
            if not part:
                break  # the file shrank since fstat
            parts.append(part)
            got += len(part)
    except OSError as exc:
        raise Unreadable(f"{path.name}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return Read(b"".join(parts), start, info.st_size, f"{info.st_dev}-{info.st_ino}")


def read_whole(path: Path, limit: int) -> bytes:
    """The whole regular file ``path``; Unreadable when it is larger than ``limit``."""
    found = read_regular(path, limit + 1)
    if len(found.data) > limit or found.size > limit:
        raise Unreadable(f"{path.name}: {size_text(found.size)}, over the {size_text(limit)} limit")
    return found.data


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file's value; Unreadable (one line) for a missing, huge, linked or broken one."""
    data = read_whole(path, limit)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unreadable(f"{path.name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise Unreadable(f"{path.name}: nested too deeply to read") from None


def optional_json(path: Path) -> Any:
    """The file's value, or None when it is absent or unusable."""
    try:
        return read_json(path)
    except Unreadable:
        return None


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON for a browser has no NaN (a diverged
    run's loss is NaN, and its page must still load)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def regular_folder(path: Path) -> bool:
    """A folder that is not a link (a checkpoint-N linked elsewhere is not read)."""
    return path.is_dir() and not path.is_symlink()
