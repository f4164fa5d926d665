"""Preference objectives: the held-out pairs train.py held out, scored by each model evaluated.

Preference accuracy (the share of pairs whose chosen completion the model finds more likely,
per token, than the rejected one) and the mean per-token log-prob margin, by
:func:`lfm.runtime.preference.pair_scores`, the same measure train.py records in
preference_eval.json. They land among the model's metrics, so gates name them like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .. import data, preference
from .evalset import _fingerprint  # the same fingerprint of the data as the holdout split's

PathLike = str | os.PathLike[str]
# The score names a pair set gives (higher is better for both).
SCORES = ("preference_accuracy", "mean_logp_margin")


@dataclass(frozen=True)
class PairSet:
    name: str
    source: str
    sha256: str
    split: str  # "holdout": the pairs train.py held out
    pairs: Any  # a datasets.Dataset of prompt/chosen/rejected
    max_length: int  # each sequence cut here, as TRL cut it in training

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "split": self.split,
            "examples": len(self.pairs),  # pairs
        }


def held_out_pair_set(
    spec: data.DatasetSpec,
    *,
    max_length: int,
    base_dir: PathLike | None = None,
    max_examples: int | None = None,
) -> PairSet:
    """The pairs train.py held out: the same records, checks and seeded split."""
    pairs = preference.held_out_pairs(spec, base_dir=base_dir)
    if max_examples:
        pairs = pairs.select(range(min(max_examples, len(pairs))))
    source, digest = _fingerprint(spec, base_dir)
    return PairSet("held_out_pairs", source, digest, "holdout", pairs, max_length)


def score_pairs(model: Any, tokenizer: Any, pair_set: PairSet) -> dict[str, float]:
    """The model's preference accuracy and mean log-prob margin on the pairs."""
    scores = preference.pair_scores(model, tokenizer, pair_set.pairs, pair_set.max_length)
    return {name: float(scores[name]) for name in SCORES}
