"""What every registry backend answers: the calls the CLI and `resolve` make."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .records import AuditEntry, Move, RegisterRequest, Resolved, VersionRecord
from .references import Reference


class Registry(Protocol):
    backend: str
    environments: tuple[str, ...]

    @property
    def location(self) -> str: ...

    def register(self, request: RegisterRequest) -> tuple[VersionRecord, bool]: ...

    def list_versions(self, name: str | None = None) -> list[VersionRecord]: ...

    def get(self, reference: Reference | str, with_files: bool = True) -> VersionRecord: ...

    def pull(
        self, reference: str, dest: Path, link: bool = False, force: bool = False
    ) -> VersionRecord: ...

    def resolve(self, reference: str) -> Resolved: ...

    def verify(self, reference: str | None = None) -> list[str]: ...

    def promote(
        self, reference: str, env: str, require_gates: bool = False, reason: str = ""
    ) -> Move | None: ...

    def rollback(
        self,
        name: str,
        env: str,
        to_version: str | None = None,
        *,
        expected: str | None = None,
        expected_target: str | None = None,
        reason: str = "",
    ) -> Move:
        """Point ``env`` back (at ``to_version``, else where `rollback_target` says). With
        ``expected`` / ``expected_target``, refuse with :class:`MovedMeanwhile` unless ``env``
        points at ``expected`` now and the rollback would go to ``expected_target``: what a
        confirmation page showed is what happens, or nothing does."""
        ...

    def history(self, name: str, env: str | None = None) -> list[Move]: ...

    def audit(self, name: str | None = None) -> list[AuditEntry]: ...

    def note(self, action: str, name: str, version: str | None, detail: str) -> None:
        """Append an audit entry for something done outside the registry (a server's swap)."""
        ...

    def close(self) -> None: ...
