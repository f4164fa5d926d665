"""The list of files a version holds, each with its sha256: what both backends store and verify."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

from lfm.runtime import links
from lfm.runtime.embedding import leftovers_note, training_leftover

# One file hash for every package (the runtime's, the layer under them all); re-exported.
from lfm.runtime.ownership import sha256_file as sha256_file

from .errors import RegistryError

CHUNK = 1 << 20
# Training leftovers (checkpoints, train.py's pairs: lfm.runtime.embedding.training_leftover) are
# for resuming a run, not for serving; a merged model is registered on its own, as type `merged`;
# W&B's local run files (train.py puts them in the output folder) belong to W&B.
SKIPPED_DIRS = ("merged", "wandb")


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, '/'-separated
    sha256: str
    size: int
    executable: bool = False


def manifest_sha256(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    """One hash for a version's content: same files with the same bytes give the same hash."""
    lines = "".join(
        f"{f.sha256}  {f.size}  {f.path}\n" for f in sorted(files, key=lambda f: f.path)
    )
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def artifact_files(model_dir: Path) -> list[Path]:
    """Every file under ``model_dir`` that a version keeps, sorted by relative path. A version
    never holds a link, nor what one points to outside the folder (:mod:`lfm.runtime.links`):
    each link skipped is a warning on stderr."""
    if not model_dir.exists():
        raise RegistryError(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise RegistryError(f"{model_dir} is not a directory: --model takes a training output")
    leftovers: list[str] = []
    try:
        found = links.folder_files(model_dir, lambda rel, is_dir: _left_out(rel, is_dir, leftovers))
    except OSError as exc:
        raise RegistryError(f"cannot read {model_dir}: {exc.strerror or exc}") from None
    links.warn(found.skipped)
    note = leftovers_note(leftovers, "the version")
    if note:
        print(note, file=sys.stderr, flush=True)
    if not found.files:
        why = f" ({len(found.skipped)} symbolic links skipped)" if found.skipped else ""
        raise RegistryError(f"model directory {model_dir} holds no files to register{why}")
    return sorted(found.files, key=lambda p: p.relative_to(model_dir).as_posix())


def _left_out(rel: PurePath, is_dir: bool, leftovers: list[str]) -> bool:
    """Whether ``rel`` stays out of a version; a training leftover is also added to
    ``leftovers``, for the note that says what was left out."""
    if training_leftover(rel.name, is_dir):
        leftovers.append(rel.as_posix() + ("/" if is_dir else ""))
        return True
    skipped_dir = is_dir and len(rel.parts) == 1 and rel.name.startswith(SKIPPED_DIRS)
    return skipped_dir or rel.name.startswith(".")
