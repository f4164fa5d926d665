"""`lfm deploy`: serving artifacts (Dockerfile.serve, k8s/) for a model that is already trained.

The templates and plans are the ones `lfm compile` uses for a config's deployment block, so both
paths emit the same manifests.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath

from lfm.compiler import __version__
from lfm.compiler.plan_deployment import (
    MODELS_DIR,
    DeploymentPlan,
    base_image,
    dns_name,
    kube_plan,
    serving_plan,
)
from lfm.compiler.rules.deployment import VLLM_LORA_RANKS
from lfm.runtime import links
from lfm.runtime.embedding import leftovers_note, training_leftover
from lfm.runtime.ownership import placement_problem, replace_problem, write_manifest
from lfm.runtime.paths import is_local

from .models import DeployError, ResolvedModel

# What stays out of the image: training leftovers (resume checkpoints, train.py's pairs; the same
# ones `lfm register` and Dockerfile.serve.dockerignore leave out: runtime.embedding), TensorBoard
# logs, hidden files (.git, .env).
SKIPPED = ("runs", ".*")


@dataclass(frozen=True)
class DeployPlan:
    """What the serving templates read: the same attribute names as the compiler's Plan."""

    name: str
    version: str
    lfm_version: str
    deployment: DeploymentPlan


def deploy_plan(model: ResolvedModel, target: str, replicas: int | None) -> DeployPlan:
    if model.version is None:
        raise DeployError(
            f"{model.path} has no version (no lfm.lock.json beside it, not from the registry), "
            "and the image needs a tag other than :latest: pass --version, e.g. --version 1.0.0"
        )
    if model.version == "latest":
        raise DeployError("--version latest: an image is tagged with a version that stays put")
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
        if local_base(model):  # a local base model travels in the image
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
    # A sentence-transformers folder (task: embedding) is served by vLLM's pooling runner on
    # /v1/embeddings, at the model's own sequence limit rather than the training length.
    embedding = model.kind == "model" and (model.path / "modules.json").is_file()
    max_length = model.settings.get("dataset", {}).get("preprocessing", {}).get("max_length")
    serving = serving_plan(
        deployment,
        kind=model.kind,
        name=model.name,
        model=served,
        lora_modules=lora,
        max_lora_rank=rank,
        copies=tuple(copies),
        max_model_len=None if embedding else max_length,
        autoscaling=bool(deployment.get("auto_scaling")),
        runner="pooling" if embedding else None,
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
            output_in_bundle=None,
            training_job=None,
            serving=serving,
        ),
    )


def local_base(model: ResolvedModel) -> Path | None:
    """An adapter's base model as a directory on this machine, to copy into the image; None for
    a hub id. A base named by a path that is not here is an error: the image cannot be built
    without it, and its host path must never reach an image or a manifest."""
    base = model.base_model
    if model.kind != "lora" or not base:
        return None
    path = Path(base).expanduser()
    if path.is_dir():
        return path
    if is_local(base):
        raise DeployError(
            f"the adapter's base model {base} is not on this machine, and the image needs it; "
            "pass --base with its hub id or a local directory that holds it"
        )
    return None  # a hub id: vLLM downloads it when the server starts


def render_deployment(plan: DeployPlan) -> dict[str, str]:
    from lfm.compiler.render import environment

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
    """Write the files and a copy of the model (the image's build context), atomically. An
    earlier deployment is replaced only with ``force`` and only if lfm wrote all of it; never
    the current directory, a link, or a folder holding the model or its base."""
    base = local_base(model)
    inputs = [model.path, *([base] if base is not None else [])]
    problem = placement_problem(out_dir, inputs, copied=inputs) or (
        replace_problem(out_dir, force=force)
    )
    if problem:
        raise DeployError(problem)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.lfm-", dir=out_dir.parent))
    try:
        for rel, text in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text, encoding="utf-8")
        copy_folder(model.path, staging / "model")
        if base is not None:
            copy_folder(base, staging / "base")
        write_manifest(staging)  # what a later --force may replace
        os.chmod(staging, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)  # every file there is lfm's (checked above)
        os.rename(staging, out_dir)
    except OSError as exc:
        raise DeployError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once renamed into place


def copy_folder(source: Path, dest: Path) -> None:
    """Copy ``source``'s files into the build context: never a link, nor what one points to
    outside ``source`` (:mod:`lfm.runtime.links`); each link skipped is a warning."""
    leftovers: list[str] = []
    try:
        found = links.folder_files(source, lambda rel, is_dir: _left_out(rel, is_dir, leftovers))
    except OSError as exc:
        raise DeployError(f"cannot read {source}: {exc.strerror or exc}") from None
    links.warn(found.skipped)
    note = leftovers_note(leftovers, f"the image's {dest.name}/")
    if note:
        print(note, file=sys.stderr, flush=True)
    if not found.files:
        why = f" ({len(found.skipped)} symbolic links skipped)" if found.skipped else ""
        raise DeployError(f"{source} holds no file to copy into the image{why}")
    for file in found.files:
        target = dest / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)  # a link to a file inside the folder: that file's content


def _left_out(rel: PurePath, is_dir: bool, leftovers: list[str]) -> bool:
    """Whether ``rel`` stays out of the image; a training leftover is also added to
    ``leftovers``, for the note that says what was left out."""
    if training_leftover(rel.name, is_dir):
        leftovers.append(rel.as_posix() + ("/" if is_dir else ""))
        return True
    return any(fnmatch.fnmatch(rel.name, pattern) for pattern in SKIPPED)
