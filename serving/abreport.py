"""An A/B report, pure: each variant's metrics with 95% confidence intervals, and which is ahead.

Error rate: Wilson's score interval (sound for small counts and rates near 0). Mean latency and
mean rating: the normal approximation (mean +- 1.96 standard errors). Which is ahead: the
difference of the two variants with its own 95% interval (two-proportion for the error rate,
Newcombe's where each side's rate is 0% or 100%; Welch's for the means); a variant is ahead on
a metric only when that interval excludes zero, else the report says the difference is not
significant yet. Both sides alike with no spread (no errors on either side, every rating the
same) is no difference, with a note saying so, not a lack of data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .guardrails import Window

Z95 = 1.959963984540054


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion; (0, 1) for no trials."""
    if total <= 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float, float] | None:
    """(mean, low, high) by the normal approximation; None with fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    error = math.sqrt(_variance(values) / len(values))
    return (mean, mean - z * error, mean + z * error)


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def summary(window: Window) -> dict[str, Any]:
    low, high = wilson(window.errors, window.requests)
    latency = mean_interval(window.latencies)
    rating = mean_interval(window.ratings)
    return {
        "requests": window.requests,
        "errors": window.errors,
        "error_rate": window.error_rate,
        "error_rate_ci95": [low, high],
        "latency_p50_s": window.quantile(0.5),
        "latency_p95_s": window.quantile(0.95),
        "latency_mean_s": latency[0] if latency else None,
        "latency_mean_ci95": list(latency[1:]) if latency else None,
        "tokens": window.tokens,
        "ratings": len(window.ratings),
        "rating_mean": window.mean_rating,
        "rating_mean_ci95": list(rating[1:]) if rating else None,
    }


def _proportion_difference(a: Window, b: Window) -> tuple[float, float, float] | None:
    if not a.requests or not b.requests:
        return None
    pa, pb = a.error_rate, b.error_rate
    error = math.sqrt(pa * (1 - pa) / a.requests + pb * (1 - pb) / b.requests)
    if error == 0:  # each side all good or all bad: the normal interval has no width
        if pa == pb:
            return (0.0, 0.0, 0.0)  # no difference (see _note)
        # Newcombe's interval from the two Wilson intervals: sound at 0% and 100%
        (la, ua), (lb, ub) = wilson(a.errors, a.requests), wilson(b.errors, b.requests)
        d = pa - pb
        return (d, d - math.hypot(pa - la, ub - pb), d + math.hypot(ua - pa, pb - lb))
    return (pa - pb, pa - pb - Z95 * error, pa - pb + Z95 * error)


def _mean_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float] | None:
    if len(a) < 2 or len(b) < 2:
        return None
    difference = sum(a) / len(a) - sum(b) / len(b)
    error = math.sqrt(_variance(a) / len(a) + _variance(b) / len(b))
    if error == 0:
        return (0.0, 0.0, 0.0) if difference == 0 else None  # one value on both sides
    return (difference, difference - Z95 * error, difference + Z95 * error)


def _verdict(
    names: tuple[str, str],
    difference: tuple[float, float, float] | None,
    lower_is_better: bool,
    same: str = "the same value on both sides",
) -> dict[str, Any]:
    """``same``: what the report says when both sides measured one and the same value (no
    interval, no difference), e.g. no errors on either side."""
    if difference is None:
        return {"ahead": None, "difference": None, "ci95": None, "significant": False}
    value, low, high = difference  # first minus second
    if value == low == high == 0:
        return {"ahead": None, "difference": 0.0, "ci95": [0.0, 0.0], "significant": False,
                "note": same}  # fmt: skip
    significant = low > 0 or high < 0
    first_better = (value < 0) if lower_is_better else (value > 0)
    ahead = (names[0] if first_better else names[1]) if significant else None
    return {"ahead": ahead, "difference": value, "ci95": [low, high], "significant": significant}


def report(windows: dict[str, Window]) -> dict[str, Any]:
    """``windows``: exactly two variants by name (stable first). Per variant, its summary; per
    metric, the difference (first minus second) and which is ahead; overall, the variant ahead
    on the first significant metric of rating, error rate, latency (in that order), or None."""
    (first, a), (second, b) = list(windows.items())
    names = (first, second)
    alike = "no errors on either side" if not a.errors else "every request failed on both sides"
    comparisons = {
        "rating": _verdict(names, _mean_difference(a.ratings, b.ratings), lower_is_better=False),
        "error_rate": _verdict(names, _proportion_difference(a, b), True, alike),
        "latency_mean": _verdict(
            names, _mean_difference(a.latencies, b.latencies), lower_is_better=True
        ),
    }
    ahead = next((c["ahead"] for c in comparisons.values() if c["ahead"]), None)
    return {
        "variants": {name: summary(window) for name, window in windows.items()},
        "comparisons": comparisons,
        "ahead": ahead,
        "method": "error rate: Wilson score interval; means: normal approximation (95%)",
    }
