"""What `lfm chat` talks to: a model loaded here (the server's engine, without HTTP), or a
running OpenAI-compatible server (ours or any other) at an endpoint. Both stream text."""

from __future__ import annotations

import contextlib
import json
import queue
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Protocol

from .engine import Event, Job, Sampling
from .protocol import APIError, Request
from .server import ModelServer


class ChatError(Exception):
    """A turn that could not be answered; the message says why (the chat goes on)."""


class Backend(Protocol):
    def models(self) -> list[str]: ...

    def stream(self, model: str, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]: ...  # fmt: skip


class LocalBackend:
    def __init__(self, server: ModelServer) -> None:
        self.server = server

    def models(self) -> list[str]:
        return [self.server.base_name, *(a.name for a in self.server.adapters.live())]

    def stream(
        self, model: str, messages: list[dict[str, str]], sampling: Sampling
    ) -> Iterator[str]:
        server = self.server
        adapter = None
        if model != server.base_name:
            adapter = server.adapters.acquire(model)
            if adapter is None:
                raise ChatError(f"no model or adapter named {model!r}: {', '.join(self.models())}")
        events: queue.Queue[Event] = queue.Queue()
        try:
            request = Request(model, True, False, sampling, messages, None)
            try:
                ids = server.encode(request)
            except APIError as exc:
                raise ChatError(exc.message) from None
            job = Job(ids, adapter.internal if adapter else None, sampling, emit=events.put)
            server.engine.submit(job)
            try:
                while (event := events.get()).kind == "text":
                    yield event.text
                if event.kind == "error":
                    raise ChatError(event.text)
            finally:
                job.cancelled.set()  # an interrupted answer frees its row
        finally:
            if adapter:
                server.adapters.release(adapter)


class RemoteBackend:
    """Any server with OpenAI's /v1/models and streamed /v1/chat/completions."""

    def __init__(self, endpoint: str, key: str | None) -> None:
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else f"{base}/v1"
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def models(self) -> list[str]:
        with self._open("/models", None) as response:
            return [m["id"] for m in json.loads(response.read())["data"]]

    def stream(
        self, model: str, messages: list[dict[str, str]], sampling: Sampling
    ) -> Iterator[str]:
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        with self._open("/chat/completions", body) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                data = json.loads(line[5:])
                if "error" in data:
                    raise ChatError(data["error"].get("message", "the server failed"))
                for choice in data.get("choices", []):
                    text = choice.get("delta", {}).get("content")
                    if text:
                        yield text

    def _open(self, path: str, body: object):  # type: ignore[no-untyped-def]
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data, self.headers)
        try:
            return urllib.request.urlopen(request, timeout=600)  # noqa: S310 (the user's URL)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                text = json.loads(text)["error"]["message"]
            raise ChatError(f"{exc.code}: {text}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ChatError(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}") from None
