"""Hold out whole source documents, chosen with a fixed seed, so nothing leaks across splits."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable


def holdout_documents(names: Iterable[str], ratio: float, seed: int) -> frozenset[str]:
    """The documents whose records go to the test split: ``ceil(n * ratio)`` of them, at least
    one when ``ratio`` > 0 and at most all but one (both splits non-empty when n >= 2)."""
    if not 0 <= ratio < 1:
        raise ValueError(f"split ratio should be in [0, 1), got {ratio}")
    ordered = sorted(set(names))
    if ratio == 0 or len(ordered) < 2:
        return frozenset()
    count = min(max(1, math.ceil(len(ordered) * ratio)), len(ordered) - 1)
    return frozenset(random.Random(seed).sample(ordered, count))
