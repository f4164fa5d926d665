"""`lfm deploy`: serving artifacts (Dockerfile.serve, k8s/) for a model that is already trained.

Every model reference goes through `resolve_model_reference`, the one place that turns what a
user typed (a training output directory, a merged model, later a registry `name:version` or
`name@env`) into a directory and what is known about it. The templates are the ones
`lfm compile` uses for a config's deployment block, so both paths emit the same manifests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .plan_deployment import (
    MODELS_DIR,
    DeploymentPlan,
    base_image,
    dns_name,
    kube_plan,
    serving_plan,
)
from .rules.deployment import VLLM_LORA_RANKS

LOCK = "lfm.lock.json"
# `name:version` or `name@environment`, as the model registry spells its references.
REGISTRY_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._+-]+|@[A-Za-z0-9_-]+)$")
# A bare registered name (its latest version); anything with a slash is a path.
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SKIPPED = shutil.ignore_patterns("checkpoint-*", "runs", ".*")


class DeployError(Exception):
    """A one-line problem with what `lfm deploy` was given."""


@dataclass(frozen=True)
class ResolvedModel:
    path: Path  # the adapter or model directory
    kind: str  # "lora": an adapter on base_model; "model": a whole model
    base_model: str | None  # hub id or local directory (lora only)
    rank: int | None  # LoRA rank (lora only)
    name: str
    version: str
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
        if not REGISTRY_REFERENCE.match(reference) and not REGISTRY_NAME.match(reference):
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
    version = str(settings.get("version") or "latest")
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
    path: Path, reference: str, name: str, version: str, settings: dict[str, Any]
) -> ResolvedModel:
    try:
        adapter = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeployError(f"--model {reference}: unreadable adapter_config.json ({exc})") from None
    kind = adapter.get("peft_type")
    if kind != "LORA" or adapter.get("use_dora"):
        what = "a DoRA" if adapter.get("use_dora") else f"a {kind}"
        raise DeployError(
            f"--model {reference} is {what} adapter; vLLM serves LoRA adapters only: merge it "
            f"first (lfm export --model {reference} --merge -o merged/) and deploy the merged model"
        )
    base = adapter.get("base_model_name_or_path")
    if not base:
        raise DeployError(f"--model {reference}: adapter_config.json names no base model")
    return ResolvedModel(
        path, "lora", str(base), int(adapter.get("r", 16)), name, version, settings
    )


def _training_config(path: Path) -> dict[str, Any]:
    """The resolved model_config of the bundle that trained this output, when it is beside it."""
    for folder in (path, path.parent, path.parent.parent):
        lock = folder / LOCK
        if lock.is_file():
            try:
                data = json.loads(lock.read_text(encoding="utf-8"))
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


@dataclass(frozen=True)
class DeployPlan:
    """What the serving templates read: the same attribute names as the compiler's Plan."""

    name: str
    version: str
    lfm_version: str
    deployment: DeploymentPlan


def deploy_plan(model: ResolvedModel, target: str, replicas: int | None) -> DeployPlan:
    deployment = dict(model.settings.get("deployment") or {})
    deployment["target"] = target
    if replicas is not None:
        deployment["replicas"] = replicas
    if deployment.get("auto_scaling") and not deployment.get("resources", {}).get("cpu"):
        deployment["resources"] = {**deployment.get("resources", {}), "cpu": "4"}
    app = dns_name(model.name)
    copies = [("model", f"{MODELS_DIR}/{app}")]
    if model.kind == "lora":
        base = str(model.base_model)
        if Path(base).is_dir():  # a local base model travels in the image
            copies.append(("base", f"{MODELS_DIR}/base"))
            base = f"{MODELS_DIR}/base"
        rank = next((r for r in VLLM_LORA_RANKS if r >= (model.rank or 0)), None)
        if rank is None:
            raise DeployError(
                f"vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}, not {model.rank}"
            )
        served = base
        lora: tuple[tuple[str, str], ...] = ((app, f"{MODELS_DIR}/{app}"),)
    else:
        served, lora, rank = f"{MODELS_DIR}/{app}", (), None
    max_length = model.settings.get("dataset", {}).get("preprocessing", {}).get("max_length")
    serving = serving_plan(
        deployment,
        kind=model.kind,
        name=model.name,
        model=served,
        lora_modules=lora,
        max_lora_rank=rank,
        copies=tuple(copies),
        max_model_len=max_length,
        autoscaling=bool(deployment.get("auto_scaling")),
    )
    kube = kube_plan({"name": model.name, "version": model.version, "deployment": deployment})
    return DeployPlan(
        name=model.name,
        version=model.version,
        lfm_version=__version__,
        deployment=DeploymentPlan(
            target=target,
            kube=kube,
            training_image=False,
            base_image=base_image(),
            lfm_requirement=f"lfm[train]=={__version__}",
            output_in_bundle=None,
            training_job=None,
            serving=serving,
        ),
    )


def render_deployment(plan: DeployPlan) -> dict[str, str]:
    from .render import environment

    env = environment()
    names = {"Dockerfile.serve": "Dockerfile.serve.jinja"}
    if plan.deployment.kubernetes:
        names |= {
            "k8s/deployment.yaml": "k8s/deployment.yaml.jinja",
            "k8s/service.yaml": "k8s/service.yaml.jinja",
        }
        if plan.deployment.serving and plan.deployment.serving.autoscaling:
            names["k8s/hpa.yaml"] = "k8s/hpa.yaml.jinja"
    return {path: env.get_template(name).render(plan=plan) for path, name in names.items()}


def write_deployment(
    model: ResolvedModel, files: dict[str, str], out_dir: Path, *, force: bool
) -> None:
    """Write the files and a copy of the model (the image's build context), atomically."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not force:
        raise DeployError(f"{out_dir} exists and is not empty; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.lfm-", dir=out_dir.parent))
    try:
        for rel, text in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text, encoding="utf-8")
        shutil.copytree(model.path, staging / "model", ignore=SKIPPED)
        if model.kind == "lora" and model.base_model and Path(model.base_model).is_dir():
            shutil.copytree(model.base_model, staging / "base", ignore=SKIPPED)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DeployError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
