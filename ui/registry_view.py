"""The registry as the Models pages show it, read through lfm.registry's own API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lfm.registry import Move, MovedMeanwhile, RegistryError, VersionRecord, open_registry
from lfm.registry.db import DB_FILE
from lfm.registry.environments import rollback_target
from lfm.registry.location import settings as registry_settings
from lfm.registry.references import check_name, latest_of

from .settings import Settings
from .web import Problem

if TYPE_CHECKING:
    from lfm.registry import Registry

# Lineage worth a column of its own; the rest is listed under each version.
HEADLINE = ("base_model", "method", "dataset", "dataset_sha256", "config_sha256")


@dataclass(frozen=True)
class ModelSummary:
    name: str
    type: str
    versions: int
    latest: str
    environments: dict[str, str]  # env -> version it points at
    tags: dict[str, str]  # the latest version's


@dataclass(frozen=True)
class Environment:
    name: str
    current: str | None
    rollback_to: str | None  # where a plain rollback would go; None: nothing before
    gated: bool  # only versions whose gates all passed may enter


@dataclass(frozen=True)
class ModelDetail:
    name: str
    versions: list[VersionRecord]  # newest first (semantic version order)
    environments: list[Environment]
    history: list[Move]  # newest first


@contextmanager
def opened(settings: Settings) -> Iterator[Registry]:
    """The registry, its errors as a Problem (one line, shown on the page). An embedded
    registry that does not exist yet is not created: the page says where it was looked for."""
    store = None
    try:
        missing = missing_registry(settings)
        if missing:
            raise Problem(404, missing)
        store = open_registry(settings.registry, settings.backend, settings.uri)
        yield store
    except MovedMeanwhile as exc:
        raise Problem(409, str(exc)) from None
    except RegistryError as exc:
        raise Problem(400, str(exc)) from None
    except OSError as exc:
        raise Problem(500, f"{exc.filename or 'registry'}: {exc.strerror}") from None
    finally:
        if store is not None:
            store.close()


def missing_registry(settings: Settings) -> str | None:
    """Why there is no embedded registry to show (no registry.db where it should be), or None.
    RegistryError (a bad registry config) is left to the caller."""
    found = registry_settings(settings.registry, settings.backend, settings.uri)
    if found.backend != "embedded" or found.path is None or (found.path / DB_FILE).is_file():
        return None
    return (
        f"no registry at {found.path} (no {DB_FILE} there): check --registry, or register a "
        "model there first with `lfm register`"
    )


def overview(store: Registry) -> list[ModelSummary]:
    by_name: dict[str, list[VersionRecord]] = {}
    for record in store.list_versions():  # sorted by name, then semantic version
        by_name.setdefault(record.name, []).append(record)
    summaries = []
    for name, records in by_name.items():
        # What NAME:latest resolves to: the highest release, not a newer pre-release.
        latest = latest_of(r.version for r in records) or records[-1].version
        newest = next(r for r in records if r.version == latest)
        pointers = {env: r.version for r in records for env in r.environments}
        summaries.append(
            ModelSummary(name, newest.type, len(records), newest.version, pointers, newest.tags)
        )
    return summaries


def detail(store: Registry, name: str) -> ModelDetail:
    try:
        check_name(name)
    except RegistryError as exc:
        raise Problem(404, str(exc)) from None
    records = store.list_versions(name)
    if not records:
        raise Problem(404, f"no model named {name!r} in the registry")
    moves = store.history(name)
    gated = set(getattr(store, "gated_environments", ()))
    pointers = {env: r.version for r in records for env in r.environments}
    environments = [
        Environment(
            env,
            pointers.get(env),
            rollback_target(m for m in moves if m.env == env),
            env in gated,
        )
        for env in store.environments
    ]
    return ModelDetail(name, records[::-1], environments, moves[::-1])
