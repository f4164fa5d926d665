"""Prometheus metrics of one server (its own registry, so two servers in a process never mix)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
