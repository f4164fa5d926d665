"""Each text metric against values worked out by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("sacrebleu")
pytest.importorskip("rouge_score")

from lfm.runtime.errors import RuntimeConfigError  # noqa: E402
from lfm.runtime.evaluation import metrics  # noqa: E402


def test_bleu_identical_is_100_and_partial_matches_the_formula():
    assert metrics.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(
        100
    )
    # "a b c d" vs "a b c e": 1-4 gram precisions 3/4, 2/3, 1/2, 0/1; sacrebleu's exp smoothing
    # turns the zero 4-gram count into 1/(2*1); same length, so no brevity penalty.
    expected = 100 * (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** (1 / 4)
    assert metrics.bleu(["a b c d"], ["a b c e"]) == pytest.approx(expected)


def test_bleu_brevity_penalty():
    # Every n-gram of "a b c d e" is in the 6-word reference: precisions 1, only the brevity
    # penalty exp(1 - 6/5) remains.
    assert metrics.bleu(["a b c d e"], ["a b c d e f"]) == pytest.approx(100 * math.exp(1 - 6 / 5))


def test_chrf_by_hand():
    # "abc" vs "abd": char 1-grams P = R = 2/3, 2-grams 1/2, 3-grams 0; averaged over the
    # three orders both have: 7/18; F-beta of equal P and R is that value.
    assert metrics.chrf(["abc"], ["abd"]) == pytest.approx(100 * 7 / 18)
    assert metrics.chrf(["ab"], ["ac"]) == pytest.approx(25.0)


def test_rouge_by_hand():
    scores = metrics.rouge(["the cat sat"], ["the cat ran"])
    assert scores["rouge1"] == pytest.approx(2 / 3)  # 2 of 3 unigrams shared both ways
    assert scores["rouge2"] == pytest.approx(1 / 2)  # "the cat" of {the cat, cat sat}
    assert scores["rougeL"] == pytest.approx(2 / 3)  # LCS "the cat"


def test_rouge_averages_over_examples():
    scores = metrics.rouge(["x y", "the cat sat"], ["x y", "the cat ran"])
    assert scores["rouge1"] == pytest.approx((1 + 2 / 3) / 2)


def test_exact_match_normalizes_case_punctuation_and_articles():
    assert metrics.exact_match(["The Cat!"], ["cat"]) == 1.0
    assert metrics.exact_match(["a dog", "Paris."], ["cat", "paris"]) == 0.5


def test_token_f1_by_hand():
    # tokens after normalization: [cat, sat] vs [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8
    assert metrics.f1(["the cat sat"], ["a cat sat down"]) == pytest.approx(0.8)
    assert metrics.f1(["blue"], ["red"]) == 0.0
    assert metrics.f1_one("", "") == 1.0


def test_percentile_interpolates():
    assert metrics.percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert metrics.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 95) == pytest.approx(10.5)


def test_no_examples_is_a_clear_error():
    with pytest.raises(RuntimeConfigError, match="evaluation set is empty"):
        metrics.bleu([], [])
