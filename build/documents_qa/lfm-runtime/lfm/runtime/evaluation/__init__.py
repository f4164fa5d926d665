"""Evaluation of a trained model: what a bundle's ``evaluate.py`` and ``lfm evaluate`` call.

Import-light like :mod:`lfm.runtime`: the names below load their modules (and torch, peft,
sacrebleu, lm-eval) only when used.

- :mod:`.evalset`: the examples to score (holdout split, test file, custom Q&A set)
- :mod:`.metrics`: BLEU/chrF (sacrebleu), ROUGE (rouge-score), exact match and token F1
- :mod:`.model_eval`: loading base/adapter/full models, perplexity, timed generation
- :mod:`.scoring`: the configured metrics for one model on one set
- :mod:`.benchmarks`: lm-evaluation-harness tasks
- :mod:`.pairs`: a preference objective's held-out pairs (preference accuracy, log-prob margin)
- :mod:`.results`, :mod:`.gates`, :mod:`.report`, :mod:`.compare`: outputs and checks
- :mod:`.run`: one whole run (both models, files, gates)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalPlan": "run",
    "score_model": "run",
    "finish": "run",
    "run_after_training": "run",
    "GenerationSettings": "model_eval",
    "load_for_eval": "model_eval",
    "load_eval_tokenizer": "model_eval",
    "holdout_set": "evalset",
    "file_set": "evalset",
    "held_out_pair_set": "pairs",
    "Gates": "gates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
