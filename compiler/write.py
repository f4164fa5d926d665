"""Pass 7, write: put a rendered bundle on disk atomically, or compare it with one on disk.

A bundle is written into a temporary sibling directory and swapped in with renames, so a crash
or an error never leaves half a bundle. An existing directory is replaced only when it is an lfm
bundle (it has lfm.lock.json); files the bundle did not write there (the training output,
checkpoints) are carried over to the new bundle.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .diagnostics import CompileError, Diagnostic

MANIFEST = "MANIFEST.sha256"
LOCK = "lfm.lock.json"


def with_manifest(files: dict[str, str]) -> dict[str, str]:
    lines = [f"{_sha(text)}  {path}" for path, text in sorted(files.items())]
    return {**files, MANIFEST: "\n".join(lines) + "\n"}


def write_bundle(files: dict[str, str], out_dir: Path) -> None:
    out_dir = Path(out_dir)
    _refuse_foreign(out_dir)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.lfm-", dir=parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a bundle is a normal directory
    except OSError as exc:
        raise _error(f"cannot create {parent}: {exc.strerror}") from None
    try:
        for rel, text in sorted(files.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
        if (staging / "train.py").exists():
            (staging / "train.py").chmod(0o755 & ~_umask())
        _swap_in(staging, out_dir, set(files))
    except OSError as exc:
        raise _error(f"cannot write bundle {out_dir}: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, out_dir: Path, written: set[str]) -> None:
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    previous = _manifest_paths(out_dir) | {MANIFEST}
    # Keep what training put in the old bundle (output/, checkpoints, logs): move it across.
    for entry in sorted(out_dir.iterdir()):
        if (
            entry.name not in written
            and entry.name not in previous
            and not _is_generated_dir(entry, previous)
        ):
            os.rename(entry, staging / entry.name)
    retired = out_dir.with_name(f".{out_dir.name}.lfm-old")
    shutil.rmtree(retired, ignore_errors=True)
    os.rename(out_dir, retired)
    os.rename(staging, out_dir)
    shutil.rmtree(retired, ignore_errors=True)


def _is_generated_dir(entry: Path, previous: set[str]) -> bool:
    return entry.is_dir() and any(p.startswith(f"{entry.name}/") for p in previous)


def _manifest_paths(out_dir: Path) -> set[str]:
    try:
        text = (out_dir / MANIFEST).read_text(encoding="utf-8")
    except OSError:
        return {LOCK}
    return {line.split("  ", 1)[1] for line in text.splitlines() if "  " in line}


def _refuse_foreign(out_dir: Path) -> None:
    if out_dir.is_file():
        raise _error(f"{out_dir} is a file; choose a directory for the bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / LOCK).is_file():
        raise _error(
            f"{out_dir} exists and is not an lfm bundle (no {LOCK}); refusing to overwrite it",
            "choose another -o/--output directory or remove it yourself",
        )


def check_bundle(files: dict[str, str], out_dir: Path) -> list[str]:
    """Unified diffs between the rendered bundle and the one on disk; empty when up to date."""
    diffs = []
    on_disk = _manifest_paths(out_dir) | {MANIFEST} if (out_dir / MANIFEST).exists() else set()
    for rel in sorted(set(files) | on_disk):
        want = files.get(rel)
        path = out_dir / rel
        have = path.read_text(encoding="utf-8") if path.is_file() else None
        if want == have:
            continue
        diffs.append(
            "".join(
                difflib.unified_diff(
                    (have or "").splitlines(keepends=True),
                    (want or "").splitlines(keepends=True),
                    f"{out_dir}/{rel} (on disk{'' if have is not None else ', missing'})",
                    f"{out_dir}/{rel} (compiled{'' if want is not None else ', no longer generated'})",
                )
            )
        )
    return diffs


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _error(message: str, hint: str | None = None) -> CompileError:
    return CompileError([Diagnostic("error", message, (), None, hint)])
