"""Heuristic quality scores of one example, each in [0, 1]."""

from __future__ import annotations

import re

from ..generators.text import content_words

_WORD = re.compile(r"\w+")


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


def quality_score(rep: float, symbols: float, grounded: float | None, answer: str) -> float:
    """The mean of: variety (1 - repetition), clean text (few symbols), grounding, substance
    (an answer of at least three words)."""
    parts = [
        1 - rep,
        max(0.0, 1 - max(0.0, symbols - 0.05) * 4),
        1.0 if len(_WORD.findall(answer)) >= 3 else 0.5,
    ]
    if grounded is not None:
        parts.append(grounded)
    return round(sum(parts) / len(parts), 4)
