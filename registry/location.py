"""Which registry a command talks to: flag, then environment variable, then config, then default.

- ``--registry PATH`` / ``LFM_REGISTRY`` / config ``path``: an embedded registry directory
  (default: ``<user data dir>/lfm/registry``, e.g. ``~/.local/share/lfm/registry`` on Linux).
- ``--backend mlflow --uri URL`` / ``LFM_REGISTRY_BACKEND`` + ``LFM_REGISTRY_URI`` (or
  ``MLFLOW_TRACKING_URI``) / config ``backend`` + ``uri``: an MLflow tracking server.
- The config is a YAML file: ``LFM_REGISTRY_CONFIG``, else ``<user config dir>/lfm/registry.yaml``.
  It may also set ``environments`` (default dev, staging, production) and ``require_gates``
  (environments whose promotions need passed evaluation gates).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfm.runtime.inputs import read_bounded

from .environments import DEFAULT_ENVIRONMENTS
from .errors import RegistryError
from .references import check_env

BACKENDS = ("embedded", "mlflow")
CONFIG_KEYS = ("backend", "path", "uri", "environments", "require_gates")


@dataclass(frozen=True)
class Settings:
    backend: str
    path: Path | None
    uri: str | None
    environments: tuple[str, ...]
    gated_environments: tuple[str, ...]
    config_file: Path | None


def config_file() -> Path:
    explicit = os.environ.get("LFM_REGISTRY_CONFIG")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_config_dir("lfm")) / "registry.yaml"


def default_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("lfm")) / "registry"


def settings(
    registry: str | None = None, backend: str | None = None, uri: str | None = None
) -> Settings:
    path = config_file()
    config = _read_config(path)
    backend = (
        backend
        or os.environ.get("LFM_REGISTRY_BACKEND")
        or config.get("backend")
        or ("mlflow" if uri else "embedded")
    )
    if backend not in BACKENDS:
        raise RegistryError(f"unknown registry backend {backend!r}: use embedded or mlflow")
    environments = _env_list(config.get("environments"), "environments", DEFAULT_ENVIRONMENTS)
    gated = _env_list(config.get("require_gates"), "require_gates", ())
    if backend == "mlflow":
        uri = (
            uri
            or os.environ.get("LFM_REGISTRY_URI")
            or config.get("uri")
            or os.environ.get("MLFLOW_TRACKING_URI")
        )
        if not uri:
            raise RegistryError(
                "the mlflow backend needs a tracking server: pass --uri http://HOST:PORT "
                "(or set LFM_REGISTRY_URI, or `uri` in the registry config)"
            )
        return Settings(backend, None, str(uri), environments, gated, path)
    where = registry or os.environ.get("LFM_REGISTRY") or config.get("path")
    root = Path(os.path.expanduser(str(where))) if where else default_path()
    return Settings(backend, root, None, environments, gated, path)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    from ruamel.yaml import YAML, YAMLError

    try:
        data = YAML(typ="safe").load(read_bounded(path, 256 * 1024, "a registry config"))
    except (OSError, ValueError, YAMLError) as exc:
        raise RegistryError(f"registry config {path} is not readable YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RegistryError(f"registry config {path} must be a mapping of {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise RegistryError(
            f"registry config {path}: unknown key(s) {', '.join(map(str, unknown))} "
            f"(known: {', '.join(CONFIG_KEYS)})"
        )
    return data


def _env_list(value: Any, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"registry config `{key}` must be a list of environment names")
    return tuple(check_env(v) for v in value)
