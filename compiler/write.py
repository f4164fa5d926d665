"""Pass 7, write: put a rendered bundle on disk atomically, or compare it with one on disk.

A bundle is written into a temporary sibling directory and swapped in with renames, so a crash
or an error never leaves half a bundle. An existing directory is replaced only when it is an lfm
bundle (it has lfm.lock.json); every file lfm cannot prove it wrote there (by its manifest and
its content: the training output, checkpoints, a file the user added or edited) is carried over
to the new bundle (see lfm.runtime.ownership).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from lfm.runtime.ownership import MANIFEST, listed, proven

from .diagnostics import CompileError, Diagnostic

LOCK = "lfm.lock.json"


def with_manifest(files: dict[str, str]) -> dict[str, str]:
    lines = [f"{_sha(text)}  {path}" for path, text in sorted(files.items())]
    return {**files, MANIFEST: "\n".join(lines) + "\n"}


def write_bundle(files: dict[str, str], out_dir: Path) -> list[str]:
    """Write the bundle; returns the generated files the user had edited, each kept beside the
    new one as ``<name>.edited`` (lfm never discards an edit it cannot prove is its own)."""
    shown = Path(out_dir)  # as the user wrote it, for messages
    # Absolute, so that `-o .` has a real name and parent to stage beside.
    out_dir = Path(os.path.abspath(out_dir))
    if Path.cwd().resolve().is_relative_to(out_dir.resolve()):
        # The swap renames the directory away: the shell would be left in a deleted folder.
        raise _error(
            f"cannot write the bundle into the current directory ({shown})",
            "run lfm from its parent and name it with -o",
        )
    if out_dir.is_symlink():
        raise _error(
            f"{shown} is a symbolic link; lfm writes a bundle to a real directory",
            "give the directory it points to, or a new one, with -o",
        )
    kept = _finish_interrupted_swap(out_dir)
    _refuse_foreign(out_dir, shown)
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
        kept += _swap_in(staging, out_dir)
    except OSError as exc:
        raise _error(f"cannot write bundle {shown}: {exc.strerror}") from None
    finally:
        # Staging only ever holds files rendered here, never the user's.
        shutil.rmtree(staging, ignore_errors=True)
    return kept


def _swap_in(staging: Path, out_dir: Path) -> list[str]:
    """Replace out_dir by staging; what training left in the old bundle moves to the new one."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return []
    retired = _retired(out_dir)
    os.rename(out_dir, retired)
    os.rename(staging, out_dir)
    return _finish_interrupted_swap(out_dir)


def _finish_interrupted_swap(out_dir: Path) -> list[str]:
    """Complete a swap that stopped half-way (or just ran): carry user files, drop the old bundle.

    The retired bundle is deleted only once nothing but files lfm generated (listed in its
    manifest and unchanged) is left in it.
    """
    retired = _retired(out_dir)
    if not retired.exists():
        return []
    if not out_dir.exists():
        os.rename(retired, out_dir)  # stopped between the two renames: put the old bundle back
        return []
    kept: list[str] = []
    left = _carry_over(retired, out_dir, "", proven(retired), kept)
    if left:
        raise _error(
            f"could not move {', '.join(left)} from the previous bundle into {out_dir}",
            f"they are safe in {retired}; move them yourself, then compile again",
        )
    shutil.rmtree(retired)
    return kept


def _retired(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.lfm-old")


def _carry_over(
    source: Path, target: Path, prefix: str, generated: set[str], kept: list[str]
) -> list[str]:
    """Move what lfm did not generate from ``source`` into ``target``, keeping relative paths;
    a folder holding no generated file moves whole. A file the new bundle generates too (the
    user edited it) is kept beside it as ``<name>.edited`` and named in ``kept``. Returns what
    could not move."""
    left = []
    for entry in sorted(source.iterdir()):
        rel = f"{prefix}{entry.name}"
        if entry.is_dir() and not entry.is_symlink():
            if any(path.startswith(f"{rel}/") for path in generated):
                left += _carry_over(entry, target / entry.name, f"{rel}/", generated, kept)
                continue
        elif rel in generated:
            continue
        destination = target / entry.name
        if destination.is_file() and not entry.is_dir():
            destination = _free_name(target, f"{entry.name}.edited")
            kept.append(f"{prefix}{destination.name}")
        try:
            if destination.exists() or destination.is_symlink():
                raise FileExistsError(rel)
            target.mkdir(parents=True, exist_ok=True)
            os.rename(entry, destination)
        except OSError:
            left.append(rel)
    return left


def _free_name(folder: Path, name: str) -> Path:
    candidate, number = folder / name, 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = folder / f"{name}-{number}"
    return candidate


def _refuse_foreign(out_dir: Path, shown: Path) -> None:
    if out_dir.is_file():
        raise _error(f"{shown} is a file; choose a directory for the bundle")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / LOCK).is_file():
        raise _error(
            f"{shown} exists and is not an lfm bundle (no {LOCK}); refusing to overwrite it",
            "choose another -o/--output directory or remove it yourself",
        )


def check_bundle(files: dict[str, str], out_dir: Path) -> list[str]:
    """What differs between the rendered bundle and the one on disk; empty when up to date."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return [f"{out_dir} does not exist: nothing to compare\n"]
    diffs = []
    on_disk = set(listed(out_dir)) | {MANIFEST} if (out_dir / MANIFEST).exists() else set()
    for rel in sorted(set(files) | on_disk):
        want = files.get(rel)
        path = out_dir / rel
        have = path.read_text(encoding="utf-8") if path.is_file() else None
        if want == have:
            continue
        if want is None:
            diffs.append(f"{out_dir}/{rel}: on disk but no longer generated\n")
            continue
        diffs.append(
            "".join(
                difflib.unified_diff(
                    (have or "").splitlines(keepends=True),
                    want.splitlines(keepends=True),
                    f"{out_dir}/{rel} (on disk{'' if have is not None else ', missing'})",
                    f"{out_dir}/{rel} (compiled)",
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
