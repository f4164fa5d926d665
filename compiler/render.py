"""Pass 6, render: the plan -> {relative path: text}, one Jinja template per artifact.

Templates see only the Plan. The environment is strict: an undefined name fails, and every
interpolated value must come out of a quoting filter (`finalize` rejects anything else).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import jinja2

from .plan import LOCK_FORMAT, Plan
from .quoting import FILTERS, Quoted
from .vendor import DIRECTORY as VENDOR_DIRECTORY
from .vendor import vendored_files
from .write import LOCK

# Artifact path in the bundle -> its template.
TEMPLATES = {
    "train.py": "train.py.jinja",
    "accelerate.yaml": "accelerate.yaml.jinja",
    "requirements.txt": "requirements.txt.jinja",
    f"{VENDOR_DIRECTORY}/pyproject.toml": "runtime_pyproject.toml.jinja",
    "README.md": "README.md.jinja",
    ".gitignore": "gitignore.jinja",
    "evaluate.py": "evaluate.py.jinja",
    "sweep.py": "sweep.py.jinja",
    "ds_config.json": "ds_config.json.jinja",
    "Dockerfile": "Dockerfile.jinja",
    ".dockerignore": "dockerignore.jinja",
    "Dockerfile.serve": "Dockerfile.serve.jinja",
    "Dockerfile.serve.dockerignore": "Dockerfile.serve.dockerignore.jinja",
    "k8s/pvc.yaml": "k8s/pvc.yaml.jinja",
    "k8s/job.yaml": "k8s/job.yaml.jinja",
    "k8s/pytorchjob.yaml": "k8s/pytorchjob.yaml.jinja",
    "k8s/sweep-job.yaml": "k8s/sweep-job.yaml.jinja",
    "k8s/deployment.yaml": "k8s/deployment.yaml.jinja",
    "k8s/service.yaml": "k8s/service.yaml.jinja",
    "k8s/hpa.yaml": "k8s/hpa.yaml.jinja",
    "k8s/deployment-candidate.yaml": "k8s/deployment-candidate.yaml.jinja",
    "k8s/service-candidate.yaml": "k8s/service-candidate.yaml.jinja",
    "k8s/httproute.yaml": "k8s/httproute.yaml.jinja",
}
# Artifacts emitted only when the config asks for them; the others always are.
WHEN: dict[str, Callable[[Plan], bool]] = {
    "evaluate.py": lambda p: p.evaluation is not None,
    "sweep.py": lambda p: p.sweep is not None,
    "ds_config.json": lambda p: p.distributed.deepspeed,
    "Dockerfile": lambda p: p.deployment.training_image,
    ".dockerignore": lambda p: p.deployment.training_image,
    "Dockerfile.serve": lambda p: p.deployment.serving is not None,
    "Dockerfile.serve.dockerignore": lambda p: p.deployment.serving is not None,
    "k8s/pvc.yaml": lambda p: p.deployment.training_job is not None,
    "k8s/job.yaml": lambda p: _job_kind(p) == "Job",
    "k8s/pytorchjob.yaml": lambda p: _job_kind(p) == "PyTorchJob",
    "k8s/sweep-job.yaml": lambda p: p.sweep is not None and _job_kind(p) is not None,
    # The stable server. A rollout bundle leaves it out: the previous version's bundle owns it
    # (its Deployment, Service and autoscaler), and this one's would restart the stable pods
    # with the candidate's settings (arguments, base model, resources, replicas).
    "k8s/deployment.yaml": lambda p: _serves_on_kubernetes(p) and not _rolls_out_on_kubernetes(p),
    "k8s/service.yaml": lambda p: _serves_on_kubernetes(p) and not _rolls_out_on_kubernetes(p),
    "k8s/hpa.yaml": lambda p: (
        _serves_on_kubernetes(p)
        and not _rolls_out_on_kubernetes(p)
        and p.deployment.serving is not None
        and p.deployment.serving.autoscaling is not None
    ),
    # A declared rollout on Kubernetes: the candidate beside the stable one, and the route that
    # weights the two (its stable backendRef is the Service the stable version's bundle made).
    "k8s/deployment-candidate.yaml": lambda p: _rolls_out_on_kubernetes(p),
    "k8s/service-candidate.yaml": lambda p: _rolls_out_on_kubernetes(p),
    "k8s/httproute.yaml": lambda p: _rolls_out_on_kubernetes(p),
}


def _job_kind(plan: Plan) -> str | None:
    job = plan.deployment.training_job
    return job.kind if job else None


def _serves_on_kubernetes(plan: Plan) -> bool:
    return plan.deployment.kubernetes and plan.deployment.serving is not None


def _rolls_out_on_kubernetes(plan: Plan) -> bool:
    return _serves_on_kubernetes(plan) and len(plan.deployment.variants) == 2


# task: embedding writes its scripts on sentence-transformers (the other artifacts are shared).
EMBEDDING_TEMPLATES = {
    "train.py": "train_embedding.py.jinja",
    "evaluate.py": "evaluate_embedding.py.jinja",
}


def artifacts(plan: Plan) -> dict[str, str]:
    """Artifact path -> template, for what this plan emits."""
    chosen = {path: name for path, name in TEMPLATES.items() if WHEN.get(path, _always)(plan)}
    if plan.embedding is not None:
        chosen.update({p: n for p, n in EMBEDDING_TEMPLATES.items() if p in chosen})
    return chosen


def _always(plan: Plan) -> bool:
    return True


def _require_quoted(value: Any) -> Any:
    if isinstance(value, Quoted):
        return value
    raise TypeError(f"template interpolated {value!r} without a quoting filter")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("lfm.templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_require_quoted,
    )
    env.filters.update(FILTERS)
    return env


def render(plan: Plan) -> dict[str, str]:
    env = environment()
    files = {
        path: env.get_template(name).render(plan=plan) for path, name in artifacts(plan).items()
    }
    files.update(vendored_files(plan.vendored_packages))
    files[LOCK] = lock_text(plan)
    return files


def lock_text(plan: Plan) -> str:
    """The lock file: what was compiled, from what, and why every value is what it is."""
    lock = {
        "lock_format": LOCK_FORMAT,
        "lfm_version": plan.lfm_version,
        "name": plan.name,
        "version": plan.version,
        "source": {
            "config": plan.config_file,
            "sha256": plan.config_sha256,
            "shape": plan.config_shape,
        },
        "model_config": json.loads(plan.resolved_json),
        "decisions": [dataclasses.asdict(d) for d in plan.decisions],
        "requirements": list(plan.requirements),
    }
    return json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
