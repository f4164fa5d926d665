"""The pinned packages a bundle needs, from the constraints list shipped with lfm.

A bundle pins the set of versions this lfm release is tested with, never whatever happens to be
installed where `lfm compile` ran (that would make bundles differ between machines).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from .methods import Method

CONSTRAINTS_FILE = "constraints.txt"


@lru_cache(maxsize=1)
def constraints() -> dict[str, str]:
    """Package name -> pinned requirement line, from templates/constraints.txt."""
    text = resources.files("lfm.templates").joinpath(CONSTRAINTS_FILE).read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[line.split("==", 1)[0].lower()] = line
    return pins


# What lfm.dataset needs where a bundle builds its dataset from documents (the `dataset` extra).
DOCUMENT_PACKAGES = (
    "pypdf", "beautifulsoup4", "lxml", "python-docx", "charset-normalizer", "langdetect",
    "datasketch", "matplotlib", "scikit-learn", "textblob",
)  # fmt: skip


def requirements_for(
    method: Method,
    strategy: str,
    trackers: list[str],
    extras: tuple[str, ...] = (),
    *,
    documents: bool = False,
) -> tuple[str, ...]:
    # rich: the runtime's progress display.
    names = ["torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "tokenizers"]
    names.append("rich")
    names += extras
    if documents:
        names += DOCUMENT_PACKAGES
    if method.quantize_4bit:
        names.append("bitsandbytes")
    if strategy.startswith("deepspeed"):
        names.append("deepspeed")
    names += [tracker for tracker in trackers if tracker != "none"]
    pins = constraints()
    return tuple(sorted(pins[name] for name in names))


# What evaluate.py adds: text metrics, lm-evaluation-harness, the report's chart.
EVALUATION_PACKAGES = ("lm-eval", "matplotlib", "rouge-score", "sacrebleu")


def evaluation_requirements() -> tuple[str, ...]:
    pins = constraints()
    return tuple(pins[name] for name in EVALUATION_PACKAGES)


def sweep_requirements() -> tuple[str, ...]:
    """What sweep.py adds: Optuna (its SQLite storage comes with it, through SQLAlchemy)."""
    return (constraints()["optuna"],)
