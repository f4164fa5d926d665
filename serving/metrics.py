"""Prometheus metrics of one server (its own registry, so two servers in a process never mix)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from .rollout import Rollouts

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120)


class Metrics:
    def __init__(self, waiting: Callable[[], int], adapters: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lfm_requests", "Requests answered, by model (base or adapter), endpoint and status.",
            ["model", "endpoint", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "lfm_request_seconds", "Time from a request's arrival to its last token.",
            ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.first_token = Histogram(
            "lfm_time_to_first_token_seconds", "Time from a request's arrival to its first text.",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.prompt_tokens = Counter(
            "lfm_prompt_tokens", "Prompt tokens read, by model.", ["model"], registry=r
        )
        self.generated_tokens = Counter(
            "lfm_generated_tokens", "Tokens generated, by model.", ["model"], registry=r
        )
        self.swaps = Counter(
            "lfm_adapter_changes", "Adapters loaded, replaced and unloaded.",
            ["model", "action"], registry=r,
        )  # fmt: skip
        Gauge(
            "lfm_requests_waiting", "Requests waiting for the next batch.", registry=r
        ).set_function(waiting)
        Gauge("lfm_adapters_loaded", "Adapters live under a name.", registry=r).set_function(
            adapters
        )

        # Rollouts: the same, per variant (stable or candidate) and the version behind it.
        variant = ["model", "variant", "version"]
        self.variant_requests = Counter(
            "lfm_variant_requests", "Requests answered in a rollout, by variant and status.",
            [*variant, "status"], registry=r,
        )  # fmt: skip
        self.variant_latency = Histogram(
            "lfm_variant_request_seconds", "Request latency in a rollout, by variant.",
            variant, buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.variant_tokens = Counter(
            "lfm_variant_generated_tokens", "Tokens generated in a rollout, by variant.",
            variant, registry=r,
        )  # fmt: skip
        self.variant_ratings = Histogram(
            "lfm_variant_rating", "Feedback ratings (0 bad to 1 good) in a rollout, by variant.",
            variant, buckets=(0.25, 0.5, 0.75, 1.0), registry=r,
        )  # fmt: skip

    def watch_rollouts(self, rollouts: Rollouts) -> None:
        """Each live rollout's weight and its variants' latency quantiles over its window."""
        self.registry.register(_RolloutCollector(rollouts))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _RolloutCollector:
    def __init__(self, rollouts: Rollouts) -> None:
        self.rollouts = rollouts

    def collect(self) -> Iterator[Any]:
        weight = GaugeMetricFamily(
            "lfm_rollout_weight", "The candidate's share of a rollout's requests now.",
            labels=["model", "candidate", "stable"],
        )  # fmt: skip
        for live in self.rollouts.all():
            rollout = live.rollout
            weight.add_metric([live.public, rollout.candidate, rollout.stable], live.weight)
        quantiles = GaugeMetricFamily(
            "lfm_variant_latency_window_seconds",
            "Latency quantiles of a rollout's variants over its guard-rail window.",
            labels=["model", "variant", "version", "quantile"],
        )
        for model, variant, version, q, seconds in self.rollouts.quantiles():
            if seconds is not None:
                quantiles.add_metric([model, variant, version, str(q)], seconds)
        yield weight
        yield quantiles

    def describe(self) -> list[Any]:
        return []  # collected on each scrape only: nothing is checked at registration
