"""Guard rails of a rollout, pure: the candidate's window of requests against the stable one's.

A breach is a one-line reason (what, by how much, over how many requests); nothing is judged
until the candidate has ``min_requests`` in the window. Without enough stable requests to
compare with (a blue-green switch sends it none), the error rate is compared with zero and the
latency and the rating are not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: `lfm serve` runs without the registry extra (semver)
    from lfm.registry.rollouts import Guards


@dataclass(frozen=True)
class Window:
    """One variant's requests over the window: outcomes, latencies of the answered, ratings."""

    requests: int
    errors: int
    latencies: tuple[float, ...]  # seconds, of the requests answered
    ratings: tuple[float, ...]  # 0 (bad) to 1 (good)
    tokens: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float | None:
        return quantile(self.latencies, q)

    @property
    def mean_rating(self) -> float | None:
        return sum(self.ratings) / len(self.ratings) if self.ratings else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Verdict:
    judged: bool  # the candidate had enough requests to judge
    breach: str | None  # why it must be rolled back, or None


def judge(guards: Guards, stable: Window, candidate: Window) -> Verdict:
    if candidate.requests < guards.min_requests:
        return Verdict(False, None)
    compared = stable.requests >= guards.min_requests
    baseline = stable.error_rate if compared else 0.0
    if candidate.error_rate - baseline > guards.max_error_rate_increase:
        return Verdict(
            True,
            f"error rate {candidate.error_rate:.1%} ({candidate.errors}/{candidate.requests}) "
            f"against {baseline:.1%} for stable: more than "
            f"{guards.max_error_rate_increase:.1%} higher",
        )
    if compared:
        mine, theirs = candidate.quantile(0.95), stable.quantile(0.95)
        if mine is not None and theirs and mine > guards.max_p95_ratio * theirs:
            return Verdict(
                True,
                f"p95 latency {mine:.3f}s against {theirs:.3f}s for stable: more than "
                f"{guards.max_p95_ratio:g}x",
            )
    enough = min(len(candidate.ratings), len(stable.ratings)) >= guards.min_ratings
    mine_r, theirs_r = candidate.mean_rating, stable.mean_rating
    if (
        enough
        and mine_r is not None
        and theirs_r is not None
        and theirs_r - mine_r > guards.max_rating_drop
    ):
        return Verdict(
            True,
            f"mean rating {mine_r:.2f} ({len(candidate.ratings)} ratings) against "
            f"{theirs_r:.2f} for stable: more than {guards.max_rating_drop:g} lower",
        )
    return Verdict(True, None)
