"""What a running `lfm serve` says about itself: /v1/models (what is loaded, from where, which
registry version) and /metrics (Prometheus: requests, latency histograms, tokens by model); and
the one thing the UI asks of it: load a registered adapter under a name (vLLM's runtime API).

Request rates need two readings: each reading is kept, and the next one's counts are divided
by the time between them. Only the URL given to `lfm ui --serve` is ever asked.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

TIMEOUT_SECONDS = 3.0
LOAD_TIMEOUT_SECONDS = 600.0  # a load reads and checks the adapter's weights, then warms it
MAX_BYTES = 4 << 20


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error here: following it would carry the read key to wherever the
    server (or whatever answers at its address) sends us."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(
            req.full_url, code, f"redirect to {newurl} refused", headers, fp
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


class Scraper:
    def __init__(self, url: str, key: str | None) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self._previous: tuple[float, dict[str, float]] | None = None
        self._lock = threading.Lock()

    def status(self) -> dict[str, Any]:
        try:
            models = self._get("/v1/models")
            text = self._get("/metrics", raw=True)
        except _Unreachable as exc:
            return {"url": self.url, "error": str(exc), "models": [], "adapters": []}
        samples = _samples(text)
        rows = _by_model(samples)
        self._add_rates(rows)
        data = models.get("data") if isinstance(models, dict) else None
        return {
            "url": self.url,
            "error": None,
            "models": [_model(m) for m in data or [] if isinstance(m, dict)],
            "adapters": [rows[name] for name in sorted(rows)],
            "waiting": _single(samples, "lfm_requests_waiting"),
            "loaded": _single(samples, "lfm_adapters_loaded"),
        }

    def rollouts(self) -> tuple[dict[int, dict[str, Any]], str | None]:
        """What the server measures of each rollout it runs (GET /v1/rollouts), by rollout id,
        and why it could not be read (None when it was)."""
        try:
            found = self._get("/v1/rollouts")
        except _Unreachable as exc:
            return {}, str(exc)
        data = found.get("data") if isinstance(found, dict) else None
        live: dict[int, dict[str, Any]] = {}
        for entry in data if isinstance(data, list) else []:
            rollout = entry.get("rollout") if isinstance(entry, dict) else None
            ident = rollout.get("id") if isinstance(rollout, dict) else None
            if isinstance(ident, int) and not isinstance(ident, bool):
                live[ident] = _live_rollout(entry)
        return live, None

    def load(self, name: str, reference: str) -> str:
        """POST /v1/load_lora_adapter: ``reference`` (NAME:VERSION, or NAME@ENV to follow) live
        as ``name``, replacing what is loaded under it (the server drains it; no request is
        dropped). Returns the server's answer; raises ServerRefused with its reason."""
        body = json.dumps({"lora_name": name, "lora_path": reference, "load_inplace": True})
        try:
            answer = self._call(
                "/v1/load_lora_adapter", LOAD_TIMEOUT_SECONDS, body.encode(), "operate"
            )
        except _Unreachable as exc:
            raise ServerRefused(str(exc)) from None
        return answer.decode("utf-8", errors="replace").strip()[:500]

    def _get(self, path: str, raw: bool = False) -> Any:
        body = self._call(path, TIMEOUT_SECONDS, None, "read")
        text = body.decode("utf-8", errors="replace")
        if raw:
            return text
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise _Unreachable(f"{path}: not JSON (is this an lfm or OpenAI server?)") from None

    def _call(self, path: str, timeout: float, data: bytes | None, role: str) -> bytes:
        request = urllib.request.Request(self.url + path, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.key:
            # Unredirected as well as refused redirects: the key is for this URL alone.
            request.add_unredirected_header("Authorization", f"Bearer {self.key}")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                body: bytes = response.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            hint = f" (give its {role} key: --serve-api-key-env)" if exc.code in (401, 403) else ""
            if 300 <= exc.code < 400:
                hint = " (a redirect: give --serve the URL it redirects to)"
            raise _Unreachable(f"{path}: HTTP {exc.code}{_reason(exc)}{hint}") from None
        except (OSError, ValueError) as exc:
            raise _Unreachable(
                f"{self.url} does not answer ({getattr(exc, 'reason', exc)})"
            ) from None
        if len(body) > MAX_BYTES:
            raise _Unreachable(f"{path}: answer larger than {MAX_BYTES} bytes")
        return body

    def _add_rates(self, rows: dict[str, dict[str, Any]]) -> None:
        now = time.monotonic()
        counts = {name: row["requests"] for name, row in rows.items()}
        with self._lock:
            previous, self._previous = self._previous, (now, counts)
        for name, row in rows.items():
            row["rate"] = None
            if previous and now > previous[0]:
                before = previous[1].get(name, 0.0)
                row["rate"] = max(0.0, row["requests"] - before) / (now - previous[0])


class _Unreachable(Exception):
    pass


class ServerRefused(Exception):
    """The server did not load what it was asked to (its own reason, or why it was not reached)."""


def _reason(exc: urllib.error.HTTPError) -> str:
    """The message of an OpenAI-shaped error body, when there is one."""
    try:
        found = json.loads(exc.read(64 << 10))["error"]["message"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return ""
    return f": {found}"[:400] if isinstance(found, str) else ""


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample with a finite value (NaN and infinities are dropped: JSON has none, and no
    count or sum the page shows is meaningful as one)."""
    try:
        return [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if isinstance(s.value, int | float) and math.isfinite(s.value)
        ]
    except (ValueError, TypeError, IndexError, KeyError):
        return []  # not Prometheus text: the page shows the models alone


def _by_model(samples: list[tuple[str, dict[str, str], float]]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    buckets: dict[str, dict[float, float]] = {}

    def row(name: str) -> dict[str, Any]:
        return rows.setdefault(
            name,
            {"model": name, "requests": 0.0, "errors": 0.0, "latency_sum": 0.0, "latency_count": 0.0,
             "prompt_tokens": 0.0, "generated_tokens": 0.0},
        )  # fmt: skip

    for name, labels, value in samples:
        model = labels.get("model")
        if model is None:
            continue
        if name == "lfm_requests_total":
            row(model)["requests"] += value
            if not labels.get("status", "200").startswith("2"):
                row(model)["errors"] += value
        elif name == "lfm_request_seconds_sum":
            row(model)["latency_sum"] += value
        elif name == "lfm_request_seconds_count":
            row(model)["latency_count"] += value
        elif name == "lfm_request_seconds_bucket":
            edge = _edge(labels.get("le", "+Inf"))
            if edge is None:
                continue  # a bucket whose bound is not a number is left out
            per_model = buckets.setdefault(model, {})
            per_model[edge] = per_model.get(edge, 0.0) + value  # summed over endpoints
        elif name in ("lfm_prompt_tokens_total", "lfm_generated_tokens_total"):
            row(model)[name.removeprefix("lfm_").removesuffix("_total")] += value
    for model, found in rows.items():
        count = found["latency_count"]
        found["mean_latency"] = found["latency_sum"] / count if count else None
        found["p50"] = _quantile(buckets.get(model, {}), 0.5)
        found["p95"] = _quantile(buckets.get(model, {}), 0.95)
    return rows


def _edge(text: str) -> float | None:
    try:
        edge = float(text)
    except ValueError:
        return None
    return None if math.isnan(edge) or edge == -math.inf else edge


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket the quantile falls in."""
    edges = sorted(buckets)
    if not edges or buckets[edges[-1]] == 0:
        return None
    target = q * buckets[edges[-1]]
    lower_edge, lower_count = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= target:
            if edge == float("inf"):
                return lower_edge  # beyond the largest bucket: its edge is all that is known
            share = (target - lower_count) / (count - lower_count) if count > lower_count else 1
            return lower_edge + (edge - lower_edge) * share
        lower_edge, lower_count = edge, count
    return None


def _single(samples: list[tuple[str, dict[str, str], float]], name: str) -> float | None:
    return next((value for n, _, value in samples if n == name), None)


# A variant's figures the Rollouts page shows, as GET /v1/rollouts reports them (its window).
VARIANT_FIGURES = (
    "requests", "errors", "error_rate", "error_rate_ci95", "latency_p50_s", "latency_p95_s",
    "tokens", "ratings", "rating_mean",
)  # fmt: skip


def _live_rollout(entry: dict[str, Any]) -> dict[str, Any]:
    """A rollout as the server runs it, reduced to what the page shows (each value as sent;
    the page escapes and formats them, whatever a server said)."""
    report = _mapping(entry.get("report"))
    variants = _mapping(report.get("variants"))
    return {
        "ready": entry.get("ready") is True,
        "halted": entry.get("halted"),
        "weight": entry.get("weight"),
        "ahead": report.get("ahead"),
        "variants": {
            str(name): {key: figures.get(key) for key in VARIANT_FIGURES}
            for name, figures in variants.items()
            if isinstance(figures, dict)
        },
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _model(entry: dict[str, Any]) -> dict[str, Any]:
    found = entry.get("lfm")
    lineage: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "id": str(entry.get("id", "")),
        "parent": entry.get("parent"),
        "source": lineage.get("source") or entry.get("root"),
        "version": lineage.get("version"),
        "rank": lineage.get("rank"),
    }
