"""Write a version's files to a directory, verifying every blob's hash on the way.

The files are assembled in a hidden sibling folder and renamed into place, so the destination
is either the complete, verified version or untouched: a corrupted blob is reported, never
served.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .blobs import BlobStore
from .errors import RegistryError
from .manifest import FileEntry, sha256_file
from .records import VersionRecord


def materialize(
    record: VersionRecord,
    blobs: BlobStore,
    dest: Path,
    *,
    link: bool = False,
    force: bool = False,
    reuse: bool = False,
) -> None:
    """Copy (or hard-link) ``record``'s files to ``dest``.

    ``reuse``: when ``dest`` already holds exactly these files with these hashes, keep it.
    """
    if reuse and holds_exactly(dest, record.files):
        return
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())) and not force:
        raise RegistryError(f"{dest} exists and is not empty; pass --force to replace it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
    except OSError as exc:
        raise RegistryError(f"cannot write to {dest.parent}: {exc.strerror}") from None
    try:
        for entry in record.files:
            target = staging / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            label = f"{record.name}:{record.version} {entry.path}"
            if link:
                blobs.link_verified(entry.sha256, target, label)
            else:
                blobs.copy_verified(entry.sha256, target, label)
                if entry.executable:
                    os.chmod(target, 0o755)
        swap_in(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def swap_in(staging: Path, dest: Path) -> None:
    if dest.exists():
        retired = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.rename(dest, retired)
        os.rename(staging, dest)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, dest)


def holds_exactly(dest: Path, files: tuple[FileEntry, ...]) -> bool:
    """True when ``dest`` holds exactly ``files``, each hashing to its recorded sha256."""
    if not dest.is_dir():
        return False
    present = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    if present != sorted(f.path for f in files):
        return False
    return all(sha256_file(dest / f.path) == f.sha256 for f in files)


def check_folder(record: VersionRecord, folder: Path) -> None:
    """Raise unless ``folder`` holds exactly ``record``'s files with their sha256 (downloads)."""
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    expected = sorted(f.path for f in record.files)
    if present != expected:
        odd = sorted(set(expected) ^ set(present))
        raise RegistryError(
            f"{record.name}:{record.version}: the stored files differ from the manifest "
            f"({', '.join(odd[:3])}); not served"
        )
    for entry in record.files:
        actual = sha256_file(folder / entry.path)
        if actual != entry.sha256:
            raise RegistryError(
                f"{record.name}:{record.version} {entry.path}: artifact is corrupted (its "
                f"content hashes to {actual[:12]}, not {entry.sha256[:12]}); not served"
            )
        if entry.executable:
            os.chmod(folder / entry.path, 0o755)
