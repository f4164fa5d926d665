"""The embedded registry: SQLite metadata plus a content-addressed blob store, in one folder.

Layout under the registry directory: ``registry.db`` (WAL), ``blobs/sha256/ab/<sha256>``,
``tmp/`` (blobs being written), ``checkouts/<name>/<version>/`` (what `resolve` serves).
Register writes every blob first, then commits the version's rows in one transaction: a process
killed anywhere before the commit leaves no version, only unreferenced blobs for `gc`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import db
from .blobs import BlobStore
from .environments import (
    DEFAULT_ENVIRONMENTS,
    PROMOTE,
    ROLLBACK,
    ROLLBACK_TO,
    Guard,
    check_known_env,
    check_promotion_gates,
    rollback_target,
)
from .errors import RegistryError
from .identity import now, who
from .manifest import FileEntry, manifest_sha256
from .materialize import materialize
from .records import AuditEntry, Move, RegisterRequest, Resolved, VersionRecord
from .references import Reference, latest_of, parse_reference, sort_versions


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock on ``lock_path`` (POSIX flock; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent resolves may both write; the last rename wins
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class EmbeddedRegistry:
    backend = "embedded"

    def __init__(
        self,
        root: Path,
        environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS,
        gated_environments: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.environments = environments
        self.gated_environments = gated_environments
        self.blobs = BlobStore(root)
        self._conn: sqlite3.Connection | None = None

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = db.connect(self.root)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---- register ----------------------------------------------------------------------------

    def register(self, request: RegisterRequest) -> tuple[VersionRecord, bool]:
        """Store a version; ``(record, False)`` when the identical version was already there."""
        for entry in request.files:
            sha, _ = self.blobs.put(request.source_dir / entry.path)
            if sha != entry.sha256:
                raise RegistryError(
                    f"{request.source_dir / entry.path} changed while it was being registered; "
                    "register again once training has finished writing it"
                )
        manifest = manifest_sha256(request.files)
        with db.transaction(self.conn) as conn:
            row = conn.execute(
                "SELECT manifest_sha256 FROM versions WHERE name = ? AND version = ?",
                (request.name, request.version),
            ).fetchone()
            if row is not None:
                if row["manifest_sha256"] != manifest:
                    raise RegistryError(
                        f"{request.name}:{request.version} is already registered with different "
                        "content; versions are immutable: register this model as a new version"
                    )
                created = False
            else:
                self._insert(conn, request, manifest)
                created = True
        return self.get(Reference(request.name, request.version), with_files=True), created

    def _insert(self, conn: sqlite3.Connection, request: RegisterRequest, manifest: str) -> None:
        at, user = now(), who()
        cursor = conn.execute(
            "INSERT INTO versions (name, version, type, manifest_sha256, size, created_at, "
            "created_by, lineage, metrics, gates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.name,
                request.version,
                request.type,
                manifest,
                sum(f.size for f in request.files),
                at,
                user,
                json.dumps(request.lineage, sort_keys=True),
                json.dumps(request.metrics, sort_keys=True),
                None if request.gates is None else json.dumps(request.gates, sort_keys=True),
            ),
        )
        version_id = cursor.lastrowid
        conn.executemany(
            "INSERT INTO files (version_id, path, sha256, size, executable) VALUES (?, ?, ?, ?, ?)",
            [(version_id, f.path, f.sha256, f.size, int(f.executable)) for f in request.files],
        )
        conn.executemany(
            "INSERT INTO tags (version_id, key, value) VALUES (?, ?, ?)",
            [(version_id, k, v) for k, v in sorted(request.tags.items())],
        )
        self._audit(
            conn,
            "register",
            request.name,
            version=request.version,
            to_value=request.version,
            detail={"manifest_sha256": manifest, "source": str(request.source_dir)},
            at=at,
            user=user,
        )

    # ---- read --------------------------------------------------------------------------------

    def names(self) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT name FROM versions ORDER BY name")
        return [r["name"] for r in rows]

    def list_versions(self, name: str | None = None) -> list[VersionRecord]:
        """Every version (of ``name``, or of all models), oldest first by semantic version."""
        where, args = ("WHERE name = ?", (name,)) if name else ("", ())
        rows = self.conn.execute(f"SELECT * FROM versions {where}", args).fetchall()
        tags: dict[int, dict[str, str]] = {}
        for t in self.conn.execute("SELECT version_id, key, value FROM tags"):
            tags.setdefault(t["version_id"], {})[t["key"]] = t["value"]
        envs = self._env_map()
        records = [self._record(r, tags.get(r["id"], {}), envs, ()) for r in rows]
        order = {v: i for i, v in enumerate(sort_versions({r.version for r in records}))}
        return sorted(records, key=lambda r: (r.name, order[r.version]))

    def get(self, reference: Reference | str, with_files: bool = True) -> VersionRecord:
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        version = self._version_for(ref)
        row = self.conn.execute(
            "SELECT * FROM versions WHERE name = ? AND version = ?", (ref.name, version)
        ).fetchone()
        tags = {
            t["key"]: t["value"]
            for t in self.conn.execute(
                "SELECT key, value FROM tags WHERE version_id = ?", (row["id"],)
            )
        }
        files: tuple[FileEntry, ...] = ()
        if with_files:
            files = tuple(
                FileEntry(f["path"], f["sha256"], f["size"], bool(f["executable"]))
                for f in self.conn.execute(
                    "SELECT * FROM files WHERE version_id = ? ORDER BY path", (row["id"],)
                )
            )
        return self._record(row, tags, self._env_map(ref.name), files)

    def _version_for(self, ref: Reference) -> str:
        versions = [
            r["version"]
            for r in self.conn.execute("SELECT version FROM versions WHERE name = ?", (ref.name,))
        ]
        if not versions:
            raise RegistryError(
                f"no model named {ref.name!r} in the registry at {self.location} (see: lfm list)"
            )
        if ref.env:
            row = self.conn.execute(
                "SELECT version FROM env_pointers WHERE name = ? AND env = ?", (ref.name, ref.env)
            ).fetchone()
            if row is None:
                raise RegistryError(
                    f"{ref.name} has no version in {ref.env}; promote one first: "
                    f"lfm promote {ref.name}:{latest_of(versions)} --env {ref.env}"
                )
            return str(row["version"])
        if ref.version is None:
            return str(latest_of(versions))
        if ref.version not in versions:
            known = ", ".join(sort_versions(versions)[-10:])
            raise RegistryError(f"{ref.name} has no version {ref.version} (it has: {known})")
        return ref.version

    def _env_map(self, name: str | None = None) -> dict[tuple[str, str], list[str]]:
        where, args = ("WHERE name = ?", (name,)) if name else ("", ())
        envs: dict[tuple[str, str], list[str]] = {}
        for r in self.conn.execute(f"SELECT * FROM env_pointers {where} ORDER BY env", args):
            envs.setdefault((r["name"], r["version"]), []).append(r["env"])
        return envs

    @staticmethod
    def _record(
        row: sqlite3.Row,
        tags: dict[str, str],
        envs: dict[tuple[str, str], list[str]],
        files: tuple[FileEntry, ...],
    ) -> VersionRecord:
        return VersionRecord(
            name=row["name"],
            version=row["version"],
            type=row["type"],
            manifest_sha256=row["manifest_sha256"],
            size=row["size"],
            created_at=row["created_at"],
            created_by=row["created_by"],
            lineage=json.loads(row["lineage"]),
            metrics=json.loads(row["metrics"]),
            tags=tags,
            gates=None if row["gates"] is None else json.loads(row["gates"]),
            files=files,
            environments=tuple(envs.get((row["name"], row["version"]), ())),
        )

    # ---- pull and resolve --------------------------------------------------------------------

    def pull(
        self, reference: str, dest: Path, link: bool = False, force: bool = False
    ) -> VersionRecord:
        record = self.get(reference)
        materialize(record, self.blobs, dest, link=link, force=force)
        return record

    def resolve(self, reference: str) -> Resolved:
        record = self.get(reference)
        checkout = self.root / "checkouts" / record.name / record.version
        checkout.parent.mkdir(parents=True, exist_ok=True)
        # Serving replicas may resolve the same version at once: one writes the checkout.
        with _exclusive(checkout.with_name(f".{record.version}.lock")):
            materialize(record, self.blobs, checkout, link=True, force=True, reuse=True)
        return Resolved(reference, record.name, record.version, checkout, record)

    def verify(self, reference: str | None = None) -> list[str]:
        """Problems with stored blobs (of one version, or of every version); empty when sound."""
        if reference:
            records = [self.get(reference)]
        else:
            records = [self.get(Reference(r.name, r.version)) for r in self.list_versions()]
        problems = []
        for record in records:
            for entry in record.files:
                try:
                    self.blobs.verify(entry.sha256, f"{record.name}:{record.version} {entry.path}")
                except RegistryError as exc:
                    problems.append(str(exc))
        return problems

    # ---- environments ------------------------------------------------------------------------

    def promote(
        self, reference: str, env: str, require_gates: bool = False, reason: str = ""
    ) -> Move | None:
        """Point ``env`` at a version; None when it already points there."""
        self._check_env(env)
        record = self.get(reference, with_files=False)
        check_promotion_gates(record, env, require_gates, self.gated_environments)
        return self._move(record.name, env, PROMOTE, record.version, reason)

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
        self._check_env(env)
        guard = Guard(expected, expected_target)
        if to_version is not None:
            record = self.get(Reference(name, to_version), with_files=False)
            check_promotion_gates(record, env, False, self.gated_environments)
            why = f"to {record.version}" + (f"; {reason}" if reason else "")
            move = self._move(name, env, ROLLBACK_TO, record.version, why, guard)
            if move is None:
                raise RegistryError(f"{name}@{env} already points at {to_version}")
            return move
        self.get(Reference(name), with_files=False)  # an unknown name is its own error
        target = rollback_target(self._moves(self.conn, name, env))
        if target is not None:  # the same rules as every way into an environment
            record = self.get(Reference(name, target), with_files=False)
            check_promotion_gates(record, env, False, self.gated_environments)
        move = self._move(name, env, ROLLBACK, None, reason, guard)
        assert move is not None
        return move

    def _move(
        self,
        name: str,
        env: str,
        action: str,
        version: str | None,
        reason: str,
        guard: Guard | None = None,
    ) -> Move | None:
        with db.transaction(self.conn) as conn:
            return self._move_in(conn, name, env, action, version, reason, guard)

    def _move_in(
        self,
        conn: sqlite3.Connection,
        name: str,
        env: str,
        action: str,
        version: str | None,
        reason: str,
        guard: Guard | None = None,
    ) -> Move | None:
        """`_move` inside the caller's transaction (a rollout's end commits with its move)."""
        row = conn.execute(
            "SELECT version FROM env_pointers WHERE name = ? AND env = ?", (name, env)
        ).fetchone()
        current = row["version"] if row else None
        if action == ROLLBACK:
            version = rollback_target(self._moves(conn, name, env))
            if version is None:
                raise RegistryError(
                    f"{name}@{env} has no earlier version to roll back to"
                    + (f" (it points at {current})" if current else "")
                )
        if guard is not None:
            guard.check(name, env, current, version)
        if version == current:
            return None
        conn.execute(
            "INSERT INTO env_pointers (name, env, version) VALUES (?, ?, ?) "
            "ON CONFLICT (name, env) DO UPDATE SET version = excluded.version",
            (name, env, version),
        )
        move = Move(name, env, action, current, version, now(), who(), reason)
        conn.execute(
            "INSERT INTO env_moves (name, env, action, from_version, to_version, at, who, "
            "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, env, action, current, version, move.at, move.who, reason),
        )
        # The reason (who asked, through what) goes in the audit entry of the same commit.
        self._audit(
            conn,
            action,
            name,
            version=version,
            env=env,
            from_value=current,
            to_value=version,
            at=move.at,
            user=move.who,
            detail={"reason": reason} if reason else None,
        )
        return move

    def _check_env(self, env: str) -> None:
        check_known_env(env, self.environments)

    def history(self, name: str, env: str | None = None) -> list[Move]:
        self.get(Reference(name), with_files=False)
        return self._moves(self.conn, name, env)

    @staticmethod
    def _moves(conn: sqlite3.Connection, name: str, env: str | None) -> list[Move]:
        where, args = ("AND env = ?", (name, env)) if env else ("", (name,))
        rows = conn.execute(
            f"SELECT * FROM env_moves WHERE name = ? {where} ORDER BY id", args
        ).fetchall()
        return [
            Move(
                r["name"],
                r["env"],
                r["action"],
                r["from_version"],
                r["to_version"],
                r["at"],
                r["who"],
                r["reason"],
            )
            for r in rows
        ]

    # ---- audit and housekeeping --------------------------------------------------------------

    def audit(self, name: str | None = None) -> list[AuditEntry]:
        where, args = ("WHERE name = ?", (name,)) if name else ("", ())
        return [
            AuditEntry(
                r["at"],
                r["who"],
                r["action"],
                r["name"],
                r["version"],
                r["env"],
                r["from_value"],
                r["to_value"],
                json.loads(r["detail"]),
            )
            for r in self.conn.execute(f"SELECT * FROM audit {where} ORDER BY id", args)
        ]

    def note(self, action: str, name: str, version: str | None, detail: str) -> None:
        with db.transaction(self.conn) as conn:
            self._audit(
                conn, action, name, version=version, detail={"detail": detail}, at=now(), user=who()
            )

    @staticmethod
    def _audit(
        conn: sqlite3.Connection,
        action: str,
        name: str,
        *,
        at: str,
        user: str,
        version: str | None = None,
        env: str | None = None,
        from_value: str | None = None,
        to_value: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, who, action, name, version, env, from_value, to_value, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                user,
                action,
                name,
                version,
                env,
                from_value,
                to_value,
                json.dumps(detail or {}, sort_keys=True),
            ),
        )

    def gc(self, grace_seconds: float = 3600.0) -> tuple[int, int]:
        """Delete blobs no version references, and temp files, older than ``grace_seconds``.

        The grace period protects a register still writing blobs it has not committed yet.
        Returns (files removed, bytes freed).
        """
        used = {r["sha256"] for r in self.conn.execute("SELECT DISTINCT sha256 FROM files")}
        cutoff = time.time() - grace_seconds
        removed = freed = 0
        candidates = [b for b in self.blobs.all_blobs() if b.name not in used]
        if self.blobs.tmp.is_dir():
            candidates += list(self.blobs.tmp.iterdir())
        for path in candidates:
            stat = path.stat()
            if stat.st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed, freed = removed + 1, freed + stat.st_size
        return removed, freed
