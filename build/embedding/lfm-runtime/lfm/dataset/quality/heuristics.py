"""Heuristic quality scores of one example, each in [0, 1]."""

from __future__ import annotations

import re

from ..generators.text import content_words

_WORD = re.compile(r"\w+")
SENTENCE_WORDS = 6  # an answer this long is a sentence, expected to take the question up


def repetition(text: str) -> float:
    """Share of repeated word trigrams: 0 for varied text, near 1 for a loop."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    if len(grams) < 2:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def symbol_ratio(text: str) -> float:
    """Share of characters that are neither letters, digits, spaces nor common punctuation."""
    if not text:
        return 0.0
    odd = sum(1 for c in text if not (c.isalnum() or c.isspace() or c in ".,;:!?'\"()-"))
    return odd / len(text)


def grounding(answer: str, context: str | None) -> float | None:
    """Share of the answer's content words found in its source chunk (None without one)."""
    if not context:
        return None
    words = content_words(answer)
    if not words:
        return 1.0
    known = set(content_words(context))
    return sum(w in known for w in words) / len(words)


def quality_score(
    rep: float,
    symbols: float,
    grounded: float | None,
    answer: str,
    asked: tuple[float, ...] | None = None,
    judged: float | None = None,
) -> float:
    """The mean of: variety (1 - repetition), clean text (few symbols), grounding, substance
    (an answer of at least three words); for a question, also its form (1 or 0) and how much of
    it the answer takes up (``asked``); and a model's rating of the pair where one judged it."""
    parts = [
        1 - rep,
        max(0.0, 1 - max(0.0, symbols - 0.05) * 4),
        1.0 if len(_WORD.findall(answer)) >= 3 else 0.5,
    ]
    if grounded is not None:
        parts.append(grounded)
    if asked is not None:
        parts.extend(asked)
    if judged is not None:
        parts.append(judged)
    return round(sum(parts) / len(parts), 4)


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Words that tie a sentence to the one before it even without a shared content word.
_LINKS = frozenset(
    [
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "they",
        "them",
        "their",
        "he",
        "she",
        "such",
        "also",
        "however",
        "therefore",
        "thus",
        "then",
        "so",
        "but",
        "and",
        "because",
        "hence",
        "moreover",
        "instead",
        "which",
    ]
)


def _stems(text: str) -> set[str]:
    """Content words cut to five letters: a cheap stemmer so "filters" meets "filter"."""
    return {w[:5] for w in content_words(text)}


def coherence(question: str, answer: str) -> float:
    """The mean of: the answer takes up the question's content words (as stems); consecutive
    answer sentences are linked (a content word shared with an earlier sentence, or a linking
    word such as "it" or "however" at the start); no sentence is repeated. 1.0 for a short, on-topic answer."""
    parts = []
    asked = _stems(question)
    if asked:
        parts.append(len(asked & _stems(answer)) / len(asked))
    sentences = [s for s in _SENTENCE.split(answer.strip()) if _WORD.search(s)]
    if len(sentences) >= 2:
        linked, seen = 0, _stems(sentences[0])
        for sentence in sentences[1:]:
            first = _WORD.search(sentence)
            stems = _stems(sentence)
            linked += bool(stems & seen) or (first is not None and first.group(0).lower() in _LINKS)
            seen |= stems
        parts.append(linked / (len(sentences) - 1))
        normalized = [" ".join(_WORD.findall(s.lower())) for s in sentences]
        parts.append(len(set(normalized)) / len(normalized))
    return round(sum(parts) / len(parts), 4) if parts else 1.0
