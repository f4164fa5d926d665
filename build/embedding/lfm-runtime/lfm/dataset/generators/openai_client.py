"""A client for any OpenAI-compatible ``/chat/completions`` endpoint, with the stdlib only.

The API key is read from the environment variable the config names (never from the config
itself). Failed requests (connection errors, 429 and 5xx) are retried with exponential backoff,
honoring ``Retry-After``; ``requests_per_minute`` spaces requests across all threads; replies
are cached on disk by request so a rerun does not pay twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from lfm.runtime.endpoints import has_credentials, key_name_problem, plain_http_problem

from ..errors import DatasetError
from .base import GenerationSettings
from .cache import ReplyCache
from .llm import GenerationFailed

RETRIED_STATUS = (408, 409, 429, 500, 502, 503, 504)


class RateLimiter:
    """At most ``per_minute`` starts per minute, shared by all threads (0: unlimited)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


def _endpoint_problem(url: str, key_env: str | None) -> str | None:
    """The rules of ``lfm.runtime.endpoints``, checked again where the request is sent: a
    bundle's train.py may have been edited, and --base-url/--api-key-env bypass the compiler."""
    if key_env and (problem := key_name_problem(key_env, "api_key_env")):
        return problem
    if has_credentials(url):
        return (
            "base_url has a user:password@ in it; put the key in an environment variable named "
            "*_API_KEY and name that variable with api_key_env"
        )
    what = "your documents" + (f" and the key in ${key_env}" if key_env else "")
    problem = plain_http_problem(url, what)
    return f"base_url: {problem}" if problem else None


class OpenAIClient:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        temperature: float = 0.2,
        max_tokens: int = 512,
        max_retries: int = 4,
        requests_per_minute: float = 0,
        timeout: float = 60.0,
        cache: ReplyCache | None = None,
        backoff: float = 1.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.limiter = RateLimiter(requests_per_minute)
        self.cache = cache or ReplyCache(None)
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0}

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> OpenAIClient:
        assert settings.base_url is not None  # checked by GenerationSettings
        url, key = settings.base_url, None
        if problem := _endpoint_problem(url, settings.api_key_env):
            raise DatasetError(problem)
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if not key:
                raise DatasetError(
                    f"the API key variable {settings.api_key_env} is not set; export it (the "
                    f"key never goes in the config)"
                )
        return cls(
            url,
            settings.model,
            api_key=key,
            temperature=settings.temperature,
            max_tokens=settings.max_new_tokens,
            max_retries=settings.max_retries,
            requests_per_minute=settings.requests_per_minute,
            timeout=settings.timeout,
            cache=ReplyCache(settings.cache_dir),
        )

    def __call__(self, prompt: str, max_new_tokens: int | None = None) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": max_new_tokens or self.max_tokens,
        }
        key = ReplyCache.key({"url": self.url, **body})
        cached = self.cache.get(key)
        if cached is not None:
            self._count("cache_hits")
            return cached
        reply = self._post_with_retries(body)
        self.cache.put(key, reply)
        return reply

    def _post_with_retries(self, body: dict[str, Any]) -> str:
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            self._count("requests")
            try:
                return self._post(body)
            except urllib.error.HTTPError as err:
                if err.code not in RETRIED_STATUS or attempt == self.max_retries:
                    raise GenerationFailed(f"HTTP {err.code} from {self.url}") from None
                delay = _retry_after(err) or self.backoff * 2**attempt
            except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as err:
                if attempt == self.max_retries:
                    raise GenerationFailed(f"{self.url}: {err}") from None
                delay = self.backoff * 2**attempt
            self._count("retries")
            time.sleep(delay)
        raise GenerationFailed(self.url)  # not reached: the loop returns or raises

    def _post(self, body: dict[str, Any]) -> str:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = json.loads(response.read().decode("utf-8"))
        try:
            return str(payload["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise ValueError("reply has no choices[0].message.content") from None

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None
