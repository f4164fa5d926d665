"""What the registry returns: plain frozen records, the same from every backend."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .manifest import FileEntry


@dataclass(frozen=True)
class RegisterRequest:
    """A version to register, prepared from a training output (see prepare.py)."""

    name: str
    version: str
    source_dir: Path
    files: tuple[FileEntry, ...]
    type: str
    lineage: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    gates: dict[str, bool] | None = None


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: str
    type: str
    manifest_sha256: str
    size: int
    created_at: str
    created_by: str
    lineage: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    gates: dict[str, bool] | None
    files: tuple[FileEntry, ...] = ()
    environments: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        data["environments"] = list(self.environments)
        return data


@dataclass(frozen=True)
class Move:
    """One change of an environment's pointer: promote or rollback, from and to."""

    name: str
    env: str
    action: str
    from_version: str | None
    to_version: str | None
    at: str
    who: str
    reason: str = ""


@dataclass(frozen=True)
class AuditEntry:
    at: str
    who: str
    action: str
    name: str
    version: str | None = None
    env: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """What `resolve()` hands a deployer: verified files on local disk and their metadata."""

    reference: str
    name: str
    version: str
    path: Path
    record: VersionRecord
