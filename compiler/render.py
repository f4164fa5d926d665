"""Pass 6, render: the plan -> {relative path: text}, one Jinja template per artifact.

Templates see only the Plan. The environment is strict: an undefined name fails, and every
interpolated value must come out of a quoting filter (`finalize` rejects anything else).
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

import jinja2

from .plan import LOCK_FORMAT, Plan
from .quoting import FILTERS, Quoted
from .write import LOCK

# Artifact path in the bundle -> its template.
TEMPLATES = {
    "train.py": "train.py.jinja",
    "accelerate.yaml": "accelerate.yaml.jinja",
    "requirements.txt": "requirements.txt.jinja",
    "README.md": "README.md.jinja",
    ".gitignore": "gitignore.jinja",
    "evaluate.py": "evaluate.py.jinja",
}
# Artifacts emitted only when the plan asks for them.
OPTIONAL = {"evaluate.py": lambda plan: plan.evaluation is not None}


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
        path: env.get_template(name).render(plan=plan)
        for path, name in TEMPLATES.items()
        if OPTIONAL.get(path, lambda _plan: True)(plan)
    }
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
