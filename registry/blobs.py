"""Content-addressed file store: each distinct file is kept once, named by its sha256.

Writes go to ``tmp/`` first and are renamed into place, so a blob under its final name is
always whole; a process killed mid-copy leaves only a temp file that `gc` removes. Blobs are
read-only, since pulls may hard-link them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import RegistryError
from .manifest import CHUNK, sha256_file


class CorruptBlob(RegistryError):
    """A blob whose bytes no longer match its name."""


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "blobs" / "sha256"
        self.tmp = root / "tmp"

    def path(self, sha256: str) -> Path:
        return self.objects / sha256[:2] / sha256

    def put(self, source: Path) -> tuple[str, int]:
        """Copy ``source`` in (hashing as it copies); return its sha256 and size."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="blob-", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.exists() and sha256_file(final) == sha:
                tmp.unlink()  # already stored: identical files are kept once
                os.utime(final)  # fresh again, so `gc`'s grace period covers this register
            else:  # new, or a damaged copy that this one heals
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            return sha, size
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def verify(self, sha256: str, label: str) -> Path:
        """The blob's path once its bytes are proven to hash to ``sha256``."""
        path = self.path(sha256)
        if not path.is_file():
            raise CorruptBlob(f"{label}: blob {sha256[:12]} is missing from the registry store")
        actual = sha256_file(path)
        if actual != sha256:
            raise CorruptBlob(
                f"{label}: blob {sha256[:12]} is corrupted (its content hashes to {actual[:12]}); "
                "not served. Re-register the version from its training output to repair it"
            )
        return path

    def copy_verified(self, sha256: str, dest: Path, label: str) -> None:
        """Copy a blob to ``dest``, hashing the bytes as they are copied; a mismatch raises."""
        path = self.path(sha256)
        if not path.is_file():
            raise CorruptBlob(f"{label}: blob {sha256[:12]} is missing from the registry store")
        digest = hashlib.sha256()
        with open(path, "rb") as src, open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise CorruptBlob(
                f"{label}: blob {sha256[:12]} is corrupted (its content hashes to "
                f"{digest.hexdigest()[:12]}); not served. Re-register the version from its "
                "training output to repair it"
            )

    def link_verified(self, sha256: str, dest: Path, label: str) -> None:
        """Hard-link a verified blob to ``dest`` (a copy when linking is impossible)."""
        path = self.verify(sha256, label)
        try:
            os.link(path, dest)
        except OSError:  # another filesystem, or links not supported: copy instead
            shutil.copyfile(path, dest)

    def all_blobs(self) -> list[Path]:
        if not self.objects.is_dir():
            return []
        return sorted(p for p in self.objects.glob("*/*") if p.is_file())
