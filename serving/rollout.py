"""A server's side of rollouts: which variant answers a request, what each variant measured.

A rollout of ``NAME@ENV`` (see :mod:`lfm.registry.rollouts`) applies to the adapter a server
serves as ``NAME`` following that environment. The candidate version is loaded beside the
stable one (as ``NAME#candidate``, a name no client can load or list) and takes the rollout's
share of the requests for ``NAME``:

- with a sticky key (the ``X-LFM-Session`` header, else OpenAI's ``user`` field) the key's hash
  under the rollout's id, in [0, 1), against the share: a key stays on its variant, and on the
  candidate as its share grows;
- without one, a draw from a random generator seeded with the rollout's seed.

Each request's outcome, latency and tokens, and the ratings sent to ``/v1/feedback``, are kept
per variant in a bounded window (:class:`Stats`), which the guard rails and the A/B report read.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .abreport import report
from .guardrails import Window

if TYPE_CHECKING:  # not at run time: `lfm serve` runs without the registry extra (semver)
    from lfm.registry.rollouts import Rollout

STABLE, CANDIDATE = "stable", "candidate"
CANDIDATE_SUFFIX = "#candidate"
PREVIOUS_SUFFIX = "#previous"  # a promoted blue-green's old version, kept for a switch back
MAX_EVENTS = 20_000  # per variant: the window's bound, whatever the traffic
MAX_ANSWERS = 100_000  # answer ids remembered for feedback
MAX_TEXTS = 1_000  # of those, the newest whose prompt and answer are kept (--feedback-text)


def hidden(name: str) -> bool:
    """A name the server gives a rollout's other versions (``NAME#candidate``, ``NAME#previous``):
    not for clients to ask for or see listed (a client's names cannot hold a ``#``)."""
    return "#" in name


def share_of(rollout_id: int, key: str) -> float:
    """Where ``key`` falls in [0, 1) for this rollout: stable across requests and servers."""
    digest = hashlib.sha256(f"{rollout_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Stats:
    """One variant's requests (time, ok, latency, tokens) and ratings, the newest kept.

    The event loop records while a follower thread reads the window: both under the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: deque[tuple[float, bool, float, int]] = deque(maxlen=MAX_EVENTS)
        # One rating per answer id (the latest counts), the newest MAX_EVENTS kept.
        self.ratings: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.requests = self.errors = self.tokens = 0  # since the rollout began
        self._unnamed = 0

    def record(self, ok: bool, latency: float, tokens: int) -> None:
        with self._lock:
            self.events.append((time.time(), ok, latency, tokens))
            self.requests += 1
            self.errors += not ok
            self.tokens += tokens

    def rate(self, rating: float, answer: str | None = None) -> bool:
        """Count ``rating`` for ``answer`` (an answer's id): True when new, False when it
        replaced that answer's earlier rating."""
        with self._lock:
            if answer is None:
                self._unnamed += 1
                answer = f"#{self._unnamed}"
            new = self.ratings.pop(answer, None) is None
            self.ratings[answer] = (time.time(), rating)
            while len(self.ratings) > MAX_EVENTS:
                self.ratings.popitem(last=False)
            return new

    def window(self, seconds: float, since: float = 0.0) -> Window:
        start = max(time.time() - seconds, since)
        with self._lock:  # a copy: the event loop appends while a follower thread reads
            events = [e for e in self.events if e[0] >= start]
            ratings = tuple(r for t, r in self.ratings.values() if t >= start)
        return Window(
            requests=len(events),
            errors=sum(not ok for _, ok, _, _ in events),
            latencies=tuple(latency for _, ok, latency, _ in events if ok),
            ratings=ratings,
            tokens=sum(tokens for *_, tokens in events),
        )


@dataclass
class Live:
    """A rollout as this server runs it."""

    rollout: Rollout
    public: str  # the name requests use
    ready: bool = False  # the candidate is loaded (and warmed, for blue-green)
    halted: str | None = None  # routed back here already, the registry not yet told
    stats: dict[str, Stats] = field(default_factory=lambda: {STABLE: Stats(), CANDIDATE: Stats()})
    draws: random.Random = field(default_factory=random.Random)

    @property
    def candidate_name(self) -> str:
        return self.public + CANDIDATE_SUFFIX

    @property
    def weight(self) -> float:
        return self.rollout.weight if self.ready and not self.halted else 0.0

    def version(self, variant: str) -> str:
        return self.rollout.candidate if variant == CANDIDATE else self.rollout.stable

    def windows(self, since: float = 0.0) -> dict[str, Window]:
        seconds = self.rollout.guards.window_s
        return {name: stats.window(seconds, since) for name, stats in self.stats.items()}


@dataclass(frozen=True)
class VariantRoute:
    adapter: str  # the adapter's name to acquire
    variant: str
    version: str
    rollout: int
    stable: str  # where a failed candidate request is answered instead


class Rollouts:
    """The rollouts live in one server, keyed by the public name they apply to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Live] = {}
        self._answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._texts: OrderedDict[str, dict[str, Any]] = OrderedDict()  # prompt, answer
        # Feedback per answer id: "pending" while one is being recorded, "done" once it is
        # (one feedback per answer: see :meth:`claim_feedback`).
        self._feedback: dict[str, str] = {}
        # Public name -> the promoted blue-green rollout whose old version is kept beside it.
        self._kept: dict[str, int] = {}

    def get(self, public: str) -> Live | None:
        with self._lock:
            return self._live.get(public)

    def all(self) -> list[Live]:
        with self._lock:
            return list(self._live.values())

    def put(self, live: Live) -> None:
        with self._lock:
            self._live[live.public] = live

    def drop(self, public: str) -> Live | None:
        with self._lock:
            return self._live.pop(public, None)

    def keep(self, public: str, rollout_id: int) -> None:
        with self._lock:
            self._kept[public] = rollout_id

    def kept(self) -> dict[str, int]:
        with self._lock:
            return dict(self._kept)

    def unkeep(self, public: str) -> None:
        with self._lock:
            self._kept.pop(public, None)

    def route(self, model: str, key: str | None) -> VariantRoute | None:
        """Which variant answers a request for ``model``; None when no rollout applies."""
        with self._lock:
            live = self._live.get(model)
            if live is None:
                return None
            point = share_of(live.rollout.id, key) if key else live.draws.random()
            variant = CANDIDATE if point < live.weight else STABLE
        adapter = live.candidate_name if variant == CANDIDATE else model
        return VariantRoute(adapter, variant, live.version(variant), live.rollout.id, model)

    def record(self, route: VariantRoute, ok: bool, latency: float, tokens: int) -> None:
        live = self.get(route.stable)
        if live is not None and live.rollout.id == route.rollout:
            live.stats[route.variant].record(ok, latency, tokens)

    # ---- answers and feedback -----------------------------------------------------------------

    def remember(
        self, ident: str, answer: dict[str, Any], text: dict[str, Any] | None = None
    ) -> None:
        """An answer's id and what gave it; ``text`` (its prompt and answer, when the server
        keeps them for feedback) is kept for the newest MAX_TEXTS answers only."""
        with self._lock:
            self._answers[ident] = answer
            while len(self._answers) > MAX_ANSWERS:
                gone, _ = self._answers.popitem(last=False)
                self._feedback.pop(gone, None)
            if text is not None:
                self._texts[ident] = text
                while len(self._texts) > MAX_TEXTS:
                    self._texts.popitem(last=False)

    def answered(self, ident: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._answers.get(ident)
            return None if found is None else {**found, **self._texts.get(ident, {})}

    def claim_feedback(self, ident: str) -> bool:
        """Whether feedback on answer ``ident`` may be recorded now: once per answer, so one
        client cannot stuff ratings to force or block a rollback. Settle the claim with
        :meth:`settle_feedback`."""
        with self._lock:
            if ident in self._feedback:
                return False
            self._feedback[ident] = "pending"
            return True

    def settle_feedback(self, ident: str, recorded: bool) -> None:
        """The claimed feedback was recorded (later ones are refused), or was not (it may be
        sent again: a rating counted already is then replaced, not counted twice)."""
        with self._lock:
            if recorded and ident in self._answers:
                self._feedback[ident] = "done"
            else:
                self._feedback.pop(ident, None)

    def rate(self, answer: dict[str, Any], rating: float, ident: str | None = None) -> bool:
        """Count ``rating`` for the variant that gave ``answer`` (its id ``ident``): False when
        it replaced that answer's earlier rating, else True."""
        live = self.get(answer["model"])
        if live is not None and live.rollout.id == answer.get("rollout"):
            return live.stats[answer["variant"]].rate(rating, ident)
        return True

    # ---- what a status or a report shows ------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for live in self.all():
            windows = live.windows()
            totals = {
                name: {"requests": s.requests, "errors": s.errors, "tokens": s.tokens}
                for name, s in live.stats.items()
            }
            out.append(
                {
                    "model": live.public,
                    "rollout": live.rollout.as_dict(),
                    "ready": live.ready,
                    "halted": live.halted,
                    "weight": live.weight,
                    "since_start": totals,
                    "report": report(windows),
                }
            )
        return out

    def quantiles(self) -> Iterator[tuple[str, str, str, float, float | None]]:
        """(model, variant, version, quantile, seconds) over each live rollout's window."""
        for live in self.all():
            for variant, window in live.windows().items():
                for q in (0.5, 0.95):
                    yield live.public, variant, live.version(variant), q, window.quantile(q)
