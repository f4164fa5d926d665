"""What a model reference names: a training output, a merged model, or a registry version.

`resolve_model_reference` is the one place that turns what a user typed (a training output
directory, a merged model, a registry `name`, `name:version` or `name@env`) into a directory and
what is known about it: adapter or whole model, base model, LoRA rank, the config that trained it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfm.runtime.inputs import MiB, read_bounded

LOCK = "lfm.lock.json"
# `name:version` or `name@environment`, as the model registry spells its references.
REGISTRY_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._+-]+|@[A-Za-z0-9_-]+)$")
# A bare registered name (its latest version); anything with a slash is a path.
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class DeployError(Exception):
    """A one-line problem with what `lfm deploy` was given."""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path  # the adapter or model directory
    kind: str  # "lora": an adapter on base_model; "model": a whole model
    base_model: str | None  # hub id or local directory (lora only)
    rank: int | None  # LoRA rank (lora only)
    name: str
    version: str | None  # None: nothing says (no lock file beside it, not from the registry)
    settings: dict[str, Any] = field(default_factory=dict)  # the config that trained it, if known


def resolve_model_reference(reference: str, cwd: Path | None = None) -> ResolvedModel:
    """A model reference -> its directory and metadata.

    A local directory (a training output or a model) is used as it is. Otherwise
    `name`, `name:version` and `name@environment` are looked up in the model registry, which
    hands back a local copy of the version's files with every hash verified.
    """
    path = Path(cwd or Path.cwd()) / Path(reference).expanduser()
    registered: tuple[str, str] | None = None
    if not path.exists():
        if not REGISTRY_REFERENCE.fullmatch(reference) and not REGISTRY_NAME.fullmatch(reference):
            raise DeployError(f"--model {reference}: no such directory")
        path, registered = _from_registry(reference)
    if not path.is_dir():
        raise DeployError(f"--model {reference}: not a directory (a training output or a model)")
    if (
        not (path / "adapter_config.json").is_file()
        and (path / "lora/adapter_config.json").is_file()
    ):
        path = path / "lora"  # a hybrid run's output: vLLM serves its LoRA adapter
    settings = _training_config(path)
    name = str(settings.get("name") or path.resolve().name)
    version = str(settings["version"]) if settings.get("version") else None
    if registered:
        name, version = registered  # the registry's name and version are the served ones
    if (path / "adapter_config.json").is_file():
        return _adapter(path, reference, name, version, settings)
    if (path / "config.json").is_file():
        return ResolvedModel(path, "model", None, None, name, version, settings)
    raise DeployError(
        f"--model {reference}: neither an adapter (adapter_config.json) nor a model (config.json)"
    )


def _from_registry(reference: str) -> tuple[Path, tuple[str, str]]:
    """The registry's verified local copy of `reference`, and its name and version."""
    try:
        from lfm.registry import RegistryError, resolve
    except ImportError:
        raise DeployError(
            f"{reference!r} is not a directory, and resolving it as a registry reference needs "
            "the registry: pip install 'lfm[registry]'"
        ) from None
    try:
        found = resolve(reference)
    except RegistryError as exc:
        raise DeployError(f"--model {reference}: {exc}") from None
    return found.path, (found.name, found.version)


def _adapter(
    path: Path, reference: str, name: str, version: str | None, settings: dict[str, Any]
) -> ResolvedModel:
    try:
        adapter = json.loads(read_bounded(path / "adapter_config.json", MiB, "an adapter config"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"--model {reference}: unreadable adapter_config.json ({exc})") from None
    if not isinstance(adapter, dict):
        raise DeployError(f"--model {reference}: adapter_config.json is not a peft adapter config")
    kind = adapter.get("peft_type")
    if kind != "LORA" or adapter.get("use_dora"):
        what = "a DoRA" if adapter.get("use_dora") else f"a {kind}"
        raise DeployError(
            f"--model {reference} is {what} adapter; vLLM and lfm serve batch LoRA adapters only: "
            f"merge it first (lfm export --model {reference} --merge -o merged/) and serve the "
            "merged model"
        )
    base = adapter.get("base_model_name_or_path")
    if not base:
        raise DeployError(f"--model {reference}: adapter_config.json names no base model")
    rank = adapter.get("r", 16)
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise DeployError(f"--model {reference}: adapter_config.json's r is not a rank: {rank!r}")
    return ResolvedModel(path, "lora", str(base), rank, name, version, settings)


def _training_config(path: Path) -> dict[str, Any]:
    """The resolved model_config of the bundle that trained this output, when it is beside it."""
    for folder in (path, path.parent, path.parent.parent):
        lock = folder / LOCK
        if lock.is_file():
            try:
                data = json.loads(read_bounded(lock, 16 * MiB, "a lock file"))
                settings = dict(data["model_config"])
                written = {d["path"] for d in data["decisions"] if d["rule"] != "default"}
            except (OSError, ValueError, KeyError, TypeError):
                return {}
            # The lock holds auto_scaling's schema defaults too; only a written block counts.
            prefix = "model_config.deployment.auto_scaling."
            if not any(path.startswith(prefix) for path in written):
                settings.get("deployment", {}).pop("auto_scaling", None)
            return settings
    return {}
