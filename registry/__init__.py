"""lfm's model and adapter registry: versions, lineage, environments, verified pulls.

The public API, for `lfm deploy` and serving::

    from lfm.registry import resolve
    found = resolve("medical_qa_specialist@production")   # or name, name:1.2.0, name:latest
    found.path      # a local directory holding the version's files, every hash verified
    found.record    # its lineage, metrics, tags and environments

Two backends answer the same calls: an embedded one (SQLite + a content-addressed blob store in
one directory, the default) and MLflow's Model Registry for teams (see location.py).
"""

from __future__ import annotations

from .backend import Registry
from .errors import MovedMeanwhile, RegistryError
from .records import Move, RegisterRequest, Resolved, VersionRecord
from .references import Reference, parse_reference

__all__ = [
    "Move",
    "MovedMeanwhile",
    "Reference",
    "RegisterRequest",
    "Registry",
    "RegistryError",
    "Resolved",
    "VersionRecord",
    "open_registry",
    "parse_reference",
    "resolve",
]


def open_registry(
    registry: str | None = None, backend: str | None = None, uri: str | None = None
) -> Registry:
    """The registry named by the arguments, else the environment, else the config file."""
    from .location import settings

    found = settings(registry, backend, uri)
    if found.backend == "mlflow":
        from .mlflow_backend import MlflowRegistry

        assert found.uri is not None
        return MlflowRegistry(found.uri, found.environments, found.gated_environments)
    from .embedded import EmbeddedRegistry

    assert found.path is not None
    return EmbeddedRegistry(found.path, found.environments, found.gated_environments)


def resolve(
    reference: str,
    *,
    registry: str | None = None,
    backend: str | None = None,
    uri: str | None = None,
) -> Resolved:
    """Find ``name``, ``name:version`` or ``name@env`` and return its verified local files.

    Raises RegistryError (one line) for a bad or unknown reference or a corrupted artifact.
    """
    parse_reference(reference)  # a malformed reference fails before opening anything
    store = open_registry(registry, backend, uri)
    try:
        return store.resolve(reference)
    finally:
        store.close()
