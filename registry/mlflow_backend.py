"""The team backend: the same registry calls on an MLflow tracking server's Model Registry.

Mapping: a name is a registered model; each of our semantic versions is one MLflow model version
tagged ``lfm.version`` (MLflow numbers its versions itself); its files are the artifacts of a
run in the ``lfm-registry`` experiment (``model/`` plus ``lfm-manifest.json`` with every sha256);
lineage, metrics and gates are ``lfm.*`` tags, user tags are plain tags; an environment is an
alias (``production`` -> version); the history of moves and the audit log are registered-model
tags (``lfm.move.<env>.<n>``, ``lfm.audit.<n>``). Access control is MLflow's own
(``mlflow server --app-name basic-auth``; credentials from MLFLOW_TRACKING_USERNAME/PASSWORD).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

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
from .materialize import check_folder, holds_exactly, swap_in
from .mlflow_tags import metric_key, record_from, version_tags
from .records import AuditEntry, Move, RegisterRequest, Resolved, VersionRecord
from .references import Reference, latest_of, parse_reference, sort_versions

EXPERIMENT = "lfm-registry"
MANIFEST_ARTIFACT = "lfm-manifest.json"


class MlflowRegistry:
    backend = "mlflow"

    def __init__(
        self,
        uri: str,
        environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS,
        gated_environments: tuple[str, ...] = (),
    ) -> None:
        # The CLI prints its own one-line results: no progress bars or INFO lines from MLflow.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise RegistryError(
                f"{exc}; the mlflow backend needs: pip install 'lfm[registry-mlflow]'"
            ) from None
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # after import: it sets its own
        self.uri = uri
        self.environments = environments
        self.gated_environments = gated_environments
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    @property
    def location(self) -> str:
        return self.uri

    def close(self) -> None:
        pass

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """An MLflow call, with its failures (server down, permission denied) as one line."""
        from mlflow.exceptions import MlflowException

        try:
            return function(*args, **kwargs)
        except MlflowException as exc:
            message = str(exc).splitlines()[0] if str(exc) else exc.error_code
            if "error code 401" in message or "error code 403" in message:
                message += (
                    " (MLflow's access control: check MLFLOW_TRACKING_USERNAME/PASSWORD and "
                    "your permissions on this model)"
                )
            raise RegistryError(f"mlflow at {self.uri}: {what} failed: {message}") from None
        except OSError as exc:
            raise RegistryError(f"mlflow at {self.uri}: {what} failed: {exc}") from None

    # ---- register ----------------------------------------------------------------------------

    def register(self, request: RegisterRequest) -> tuple[VersionRecord, bool]:
        manifest = manifest_sha256(request.files)
        existing = self._find(request.name, request.version)
        if existing is not None:
            if existing.tags.get("lfm.manifest_sha256") != manifest:
                raise RegistryError(
                    f"{request.name}:{request.version} is already registered with different "
                    "content; versions are immutable: register this model as a new version"
                )
            return self.get(Reference(request.name, request.version)), False
        run_id = self._upload(request, manifest)
        self._ensure_model(request.name)
        at, user = now(), who()
        tags = version_tags(request, manifest, at, user)
        run = self._call("reading the run", self.client.get_run, run_id)
        self._call(
            "creating the model version",
            self.client.create_model_version,
            request.name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run_id,
            tags=tags,
            description=f"{request.name}:{request.version} ({request.type})",
        )
        self._audit(
            request.name,
            "register",
            version=request.version,
            to_value=request.version,
            detail={"manifest_sha256": manifest, "run_id": run_id},
            at=at,
            user=user,
        )
        return self.get(Reference(request.name, request.version)), True

    def _upload(self, request: RegisterRequest, manifest: str) -> str:
        experiment = self._call(
            "finding the experiment", self.client.get_experiment_by_name, EXPERIMENT
        )
        experiment_id = (
            experiment.experiment_id
            if experiment
            else self._call("creating the experiment", self.client.create_experiment, EXPERIMENT)
        )
        run = self._call(
            "creating a run",
            self.client.create_run,
            experiment_id,
            run_name=f"{request.name}-{request.version}",
            tags={"lfm.name": request.name, "lfm.version": request.version},
        )
        run_id = run.info.run_id
        with tempfile.TemporaryDirectory(prefix="lfm-mlflow-") as tmp:
            listing = Path(tmp) / MANIFEST_ARTIFACT
            listing.write_text(
                json.dumps(
                    {
                        "manifest_sha256": manifest,
                        "files": [f.__dict__ for f in request.files],
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
            self._call("uploading the manifest", self.client.log_artifact, run_id, str(listing))
        # File by file, exactly what register listed: MLflow's folder upload would take
        # everything there, checkpoints and what links point to outside the folder included.
        for entry in request.files:
            self._call(
                f"uploading {entry.path}",
                self.client.log_artifact,
                run_id,
                str(request.source_dir / entry.path),
                PurePosixPath("model", entry.path).parent.as_posix(),
            )
        for key, value in request.metrics.items():
            self._call("logging a metric", self.client.log_metric, run_id, metric_key(key), value)
        self._call("closing the run", self.client.set_terminated, run_id)
        return str(run_id)

    def _ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(name, tags={"lfm": "1"})
            except MlflowException:
                self.client.get_registered_model(name)  # created meanwhile by another process

    # ---- read --------------------------------------------------------------------------------

    def _versions(self, name: str | None) -> list[Any]:
        query = f"name='{name}'" if name else ""
        found: list[Any] = []
        token = None
        while True:
            page = self._call(
                "listing versions",
                self.client.search_model_versions,
                query,
                max_results=1000,
                page_token=token,
            )
            found += [v for v in page if "lfm.version" in (v.tags or {})]
            token = page.token
            if not token:
                return found

    def _find(self, name: str, version: str) -> Any | None:
        matches = [v for v in self._versions(name) if v.tags["lfm.version"] == version]
        return matches[0] if matches else None

    def list_versions(self, name: str | None = None) -> list[VersionRecord]:
        versions = self._versions(name)
        aliases = {n: self._aliases(n) for n in {v.name for v in versions}}
        records = [record_from(v, (), aliases[v.name]) for v in versions]
        order = {v: i for i, v in enumerate(sort_versions({r.version for r in records}))}
        return sorted(records, key=lambda r: (r.name, order[r.version]))

    def get(self, reference: Reference | str, with_files: bool = True) -> VersionRecord:
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        model_version = self._model_version(ref)
        record = record_from(model_version, (), self._aliases(ref.name))
        if not with_files:
            return record
        files = self._manifest(model_version)
        if manifest_sha256(files) != record.manifest_sha256:
            raise RegistryError(
                f"{record.name}:{record.version}: its file list in MLflow's artifact store does "
                "not match the manifest hash recorded at registration; not served"
            )
        return replace(record, files=files)

    def _model_version(self, ref: Reference) -> Any:
        versions = self._versions(ref.name)
        if not versions:
            raise RegistryError(
                f"no model named {ref.name!r} in the registry at {self.uri} (see: lfm list)"
            )
        by_version = {v.tags["lfm.version"]: v for v in versions}
        if ref.env:
            number = self._aliases(ref.name).get(ref.env)
            for v in versions:
                if v.version == number:
                    return v
            raise RegistryError(
                f"{ref.name} has no version in {ref.env}; promote one first: "
                f"lfm promote {ref.name}:{latest_of(by_version)} --env {ref.env}"
            )
        wanted = ref.version or latest_of(by_version)
        if wanted not in by_version:
            known = ", ".join(sort_versions(by_version)[-10:])
            raise RegistryError(f"{ref.name} has no version {wanted} (it has: {known})")
        return by_version[wanted]

    def _manifest(self, mv: Any) -> tuple[FileEntry, ...]:
        with tempfile.TemporaryDirectory(prefix="lfm-mlflow-") as tmp:
            path = self._call(
                "downloading the manifest",
                self.client.download_artifacts,
                mv.run_id,
                MANIFEST_ARTIFACT,
                tmp,
            )
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        return tuple(FileEntry(**f) for f in data["files"])

    # ---- pull and resolve --------------------------------------------------------------------

    def pull(
        self, reference: str, dest: Path, link: bool = False, force: bool = False
    ) -> VersionRecord:
        """Download into a staging folder, check every sha256, then move into place."""
        record = self.get(reference)
        if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())) and not force:
            raise RegistryError(f"{dest} exists and is not empty; pass --force to replace it")
        mv = self._model_version(Reference(record.name, record.version))
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
        try:
            downloaded = Path(
                self._call(
                    "downloading the model files",
                    self.client.download_artifacts,
                    mv.run_id,
                    "model",
                    str(staging),
                )
            )
            check_folder(record, downloaded)
            swap_in(downloaded, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return record

    def resolve(self, reference: str) -> Resolved:
        import hashlib

        import platformdirs

        record = self.get(reference)
        server = hashlib.sha256(self.uri.encode()).hexdigest()[:12]
        cache = Path(platformdirs.user_cache_dir("lfm")) / "mlflow" / server
        checkout = cache / record.name / record.version
        if not holds_exactly(checkout, record.files):
            self.pull(f"{record.name}:{record.version}", checkout, force=True)
        return Resolved(reference, record.name, record.version, checkout, record)

    def verify(self, reference: str | None = None) -> list[str]:
        references = (
            [reference] if reference else [f"{r.name}:{r.version}" for r in self.list_versions()]
        )
        problems = []
        for ref in references:
            with tempfile.TemporaryDirectory(prefix="lfm-verify-") as tmp:
                try:
                    self.pull(ref, Path(tmp) / "v")
                except RegistryError as exc:
                    problems.append(str(exc))
        return problems

    # ---- environments ------------------------------------------------------------------------

    def promote(
        self, reference: str, env: str, require_gates: bool = False, reason: str = ""
    ) -> Move | None:
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
        # MLflow has no transaction over an alias and a tag: the guard is checked just before
        # the move, which narrows the race (a double-click) without closing it.
        self._check_env(env)
        guard = Guard(expected, expected_target)
        if to_version is not None:
            record = self.get(Reference(name, to_version), with_files=False)
            check_promotion_gates(record, env, False, self.gated_environments)
            guard.check(name, env, self._current(name, env), to_version)
            why = f"to {to_version}" + (f"; {reason}" if reason else "")
            move = self._move(name, env, ROLLBACK_TO, to_version, why)
            if move is None:
                raise RegistryError(f"{name}@{env} already points at {to_version}")
            return move
        target = rollback_target(self.history(name, env))
        current = self._current(name, env)
        if target is None:
            raise RegistryError(
                f"{name}@{env} has no earlier version to roll back to"
                + (f" (it points at {current})" if current else "")
            )
        guard.check(name, env, current, target)
        record = self.get(Reference(name, target), with_files=False)
        check_promotion_gates(record, env, False, self.gated_environments)
        move = self._move(name, env, ROLLBACK, target, reason)
        assert move is not None
        return move

    def _current(self, name: str, env: str) -> str | None:
        number = self._aliases(name).get(env)
        for v in self._versions(name):
            if v.version == number:
                return str(v.tags["lfm.version"])
        return None

    def _aliases(self, name: str) -> dict[str, str]:
        """Environment -> MLflow version number, from the registered model's aliases."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            return {}
        return {alias: str(number) for alias, number in (model.aliases or {}).items()}

    def _move(self, name: str, env: str, action: str, version: str, reason: str) -> Move | None:
        current = self._current(name, env)
        if version == current:
            return None
        mv = self._model_version(Reference(name, version))
        self._call(
            "setting the alias", self.client.set_registered_model_alias, name, env, mv.version
        )
        move = Move(name, env, action, current, version, now(), who(), reason)
        count = len(self._model_tags(name, "lfm.move."))
        self._call(
            "recording the move",
            self.client.set_registered_model_tag,
            name,
            f"lfm.move.{count + 1:06d}",
            json.dumps(move.__dict__, sort_keys=True),
        )
        self._audit(
            name,
            action,
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

    def _model_tags(self, name: str, prefix: str) -> list[dict[str, Any]]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            raise RegistryError(f"no model named {name!r} in the registry at {self.uri}") from None
        keys = sorted(k for k in (model.tags or {}) if k.startswith(prefix))
        return [json.loads(model.tags[k]) for k in keys]

    def history(self, name: str, env: str | None = None) -> list[Move]:
        moves = [Move(**m) for m in self._model_tags(name, "lfm.move.")]
        return [m for m in moves if env is None or m.env == env]

    # ---- audit -------------------------------------------------------------------------------

    def note(self, action: str, name: str, version: str | None, detail: str) -> None:
        self._audit(name, action, version=version, detail={"detail": detail}, at=now(), user=who())

    def _audit(
        self,
        name: str,
        action: str,
        *,
        at: str,
        user: str,
        version: str | None = None,
        env: str | None = None,
        from_value: str | None = None,
        to_value: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        entry = AuditEntry(at, user, action, name, version, env, from_value, to_value, detail or {})
        count = len(self._model_tags(name, "lfm.audit."))
        self._call(
            "writing the audit log",
            self.client.set_registered_model_tag,
            name,
            f"lfm.audit.{count + 1:06d}",
            json.dumps(entry.__dict__, sort_keys=True),
        )

    def audit(self, name: str | None = None) -> list[AuditEntry]:
        names = [name] if name else sorted({v.name for v in self._versions(None)})
        entries = [AuditEntry(**e) for n in names for e in self._model_tags(n, "lfm.audit.")]
        return sorted(entries, key=lambda e: e.at)
