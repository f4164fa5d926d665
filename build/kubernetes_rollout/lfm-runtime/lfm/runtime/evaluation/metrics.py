"""Text metrics over (prediction, reference) pairs, from maintained implementations.

- ``bleu`` and ``chrf``: sacrebleu's corpus scores (0-100, sacrebleu's own scale and defaults,
  so numbers compare with published ones).
- ``rouge``: Google's ``rouge-score`` (rouge1, rouge2, rougeL F-measure, stemming on), averaged
  over examples (0-1).
- ``exact_match`` and ``f1``: the SQuAD definitions (lower-case, strip punctuation, articles and
  extra whitespace; F1 over bag-of-tokens overlap), averaged over examples (0-1).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from ..errors import RuntimeConfigError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def _check(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise RuntimeConfigError("evaluation: no examples to score; the evaluation set is empty")


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenization, exp smoothing), 0-100."""
    import sacrebleu

    _check(predictions, references)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (character 6-grams, beta 2), 0-100."""
    import sacrebleu

    _check(predictions, references)
    return float(sacrebleu.corpus_chrf(list(predictions), [list(references)]).score)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean rouge1 / rouge2 / rougeL F-measure over examples, 0-1."""
    from rouge_score import rouge_scorer

    _check(predictions, references)
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = dict.fromkeys(kinds, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
        for kind in kinds:
            totals[kind] += scores[kind].fmeasure
    return {kind: total / len(predictions) for kind, total in totals.items()}


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_one(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_one(prediction: str, reference: str) -> float:
    """Token F1 of one answer: harmonic mean of token precision and recall."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)  # both empty: a match; one empty: none
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    _check(predictions, references)
    pairs = zip(predictions, references, strict=True)
    return sum(exact_match_one(p, r) for p, r in pairs) / len(predictions)


def f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    _check(predictions, references)
    return sum(f1_one(p, r) for p, r in zip(predictions, references, strict=True)) / len(
        predictions
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default."""
    import numpy

    if not values:
        raise ValueError("percentile of no values")
    return float(numpy.percentile(list(values), q))
