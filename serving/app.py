"""The HTTP side: OpenAI's routes, vLLM's adapter routes, health, readiness and metrics.

Starlette on uvicorn. Every error is a JSON body in OpenAI's shape with a 4xx or 5xx status,
and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .adapters import Adapter, AdapterError
from .auth import Caller
from .embeddings import embeddings_endpoint
from .engine import Event, Job
from .http import Handler, health, http_error, json_body, metrics, middleware, route
from .protocol import APIError, Request, answer, bad, chunk, new_id, parse, usage
from .rollout import CANDIDATE, VariantRoute, hidden
from .rollout_api import acquire, feedback, record, rollouts, stable_instead, sticky_key

if TYPE_CHECKING:
    from .server import ModelServer

logger = logging.getLogger("lfm.serving")


def create_app(server: ModelServer) -> Starlette:
    routes: list[tuple[str, Handler, list[str], str | None]] = [
        ("/health", health, ["GET"], None),
        ("/ready", _ready, ["GET"], None),
        ("/metrics", metrics, ["GET"], "read"),
        ("/v1/models", _models, ["GET"], "read"),
        ("/v1/chat/completions", _chat, ["POST"], "read"),
        ("/v1/completions", _completion, ["POST"], "read"),
        ("/v1/embeddings", embeddings_endpoint, ["POST"], "read"),
        ("/v1/load_lora_adapter", _load, ["POST"], "operate"),
        ("/v1/unload_lora_adapter", _unload, ["POST"], "operate"),
        ("/v1/feedback", _feedback, ["POST"], "read"),
        ("/v1/rollouts", rollouts, ["GET"], "read"),
    ]
    return Starlette(
        routes=[route(server, *each) for each in routes],
        lifespan=_lifespan(server),
        middleware=middleware(server),
        exception_handlers={HTTPException: http_error},
    )


def _lifespan(server: ModelServer) -> Callable[[Starlette], Any]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        server.close()  # the engine and the registry follower stop with the server

    return lifespan


# ---- health ---------------------------------------------------------------------------------


async def _ready(server: ModelServer, request: HTTPRequest, caller: None) -> Response:
    if server.engine.alive:
        return JSONResponse({"status": "ready", "model": server.base_name})
    return JSONResponse({"status": "not ready"}, status_code=503)


async def _models(server: ModelServer, request: HTTPRequest, caller: Caller) -> Response:
    created = int(server.started)
    data: list[dict[str, Any]] = [
        {"id": server.base_name, "object": "model", "created": created, "owned_by": "lfm",
         "root": server.base.reference, "parent": None},
    ]  # fmt: skip
    for adapter in server.adapters.live():
        if hidden(adapter.name):  # a rollout's other versions answer under its name
            continue
        data.append(
            {
                "id": adapter.name,
                "object": "model",
                "created": int(adapter.loaded_at),
                "owned_by": "lfm",
                "root": adapter.source,
                "parent": server.base_name,
                # Lineage: where it came from, which registry version is live.
                "lfm": {"source": adapter.source, "version": adapter.version, "rank": adapter.rank},
            }
        )
    data += server.embeddings.listed()  # /v1/embeddings models: "lfm": {"kind": "embedding"}
    return JSONResponse({"object": "list", "data": data})


# ---- generation -----------------------------------------------------------------------------


async def _chat(server: ModelServer, request: HTTPRequest, caller: Caller) -> Response:
    body = await json_body(request)
    key = sticky_key(request, body)
    return await _generate(server, request, parse(body, chat=True), chat=True, key=key)


async def _completion(server: ModelServer, request: HTTPRequest, caller: Caller) -> Response:
    body = await json_body(request)
    key = sticky_key(request, body)
    return await _generate(server, request, parse(body, chat=False), chat=False, key=key)


async def _feedback(server: ModelServer, request: HTTPRequest, caller: Caller) -> Response:
    return await feedback(server, request, caller, await json_body(request))


async def _generate(
    server: ModelServer, http: HTTPRequest, request: Request, *, chat: bool, key: str | None = None
) -> Response:
    started = time.monotonic()
    endpoint = "chat" if chat else "completions"
    adapter: Adapter | None = None
    route: VariantRoute | None = None  # the variant of a rollout that answers, if one applies
    if request.model != server.base_name:
        adapter, route = acquire(server, request.model, key)
        if adapter is None:
            # Not the client's string as a label: each new one would be a new time series.
            server.metrics.requests.labels("unknown", endpoint, "404").inc()
            # /v1/models lists embedding models too: say which route serves one.
            why = (
                f"{request.model!r} is an embedding model: POST /v1/embeddings"
                if request.model in server.embeddings.names()
                else f"the model {request.model!r} is not served here (GET /v1/models lists them)"
            )
            raise APIError(404, why, param="model", code="model_not_found")
    try:
        # Tokenizing a long prompt takes a while: not on the loop every client shares.
        prompt_ids = await run_in_threadpool(server.encode, request)
    except BaseException as exc:
        if adapter:
            server.adapters.release(adapter)
        if isinstance(exc, APIError):
            server.metrics.requests.labels(request.model, endpoint, str(exc.status)).inc()
        raise
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()
    job = Job(
        prompt_ids,
        adapter.internal if adapter else None,
        request.sampling,
        emit=lambda event: _deliver(loop, events, event),
    )
    run = _Run(server, request, adapter, job, events, endpoint, started)
    run.route = route
    server.engine.submit(job)
    if request.stream:
        # The background task ends the run even when the stream never started (a client
        # gone before its first byte): the adapter is released, the row leaves the batch.
        return StreamingResponse(
            run.stream(chat), media_type="text/event-stream", background=BackgroundTask(run.end)
        )
    return JSONResponse(await run.whole(chat, http))


def _deliver(loop: asyncio.AbstractEventLoop, events: asyncio.Queue[Event], event: Event) -> None:
    """From the engine thread to the request's coroutine."""
    with contextlib.suppress(RuntimeError):  # the loop is gone (the server is stopping)
        loop.call_soon_threadsafe(events.put_nowait, event)


class _Run:
    """One request in the engine: its events, its metrics, and its adapter held until the end."""

    def __init__(self, server: ModelServer, request: Request, adapter: Adapter | None, job: Job,
                 events: asyncio.Queue[Event], endpoint: str, started: float) -> None:  # fmt: skip
        self.server, self.request, self.adapter, self.job = server, request, adapter, job
        self.events, self.endpoint, self.started = events, endpoint, started
        self.ident = new_id(endpoint == "chat")
        self.created = int(time.time())  # the same on every chunk of a stream
        # Which version answered: the adapter live when the request started.
        self.fingerprint = (
            f"{request.model}@{adapter.version or adapter.internal}" if adapter else "base"
        )
        self.route: VariantRoute | None = None
        self.tokens = 0
        self.first = True  # the first chunk of a chat stream carries the role
        self.answered = False  # text has come (time to first token is measured once)
        self.ended = False
        self.status = "499"  # until the engine ends it: the client closed the request first
        self.pieces: list[str] = []  # the answer's text, as it was sent

    async def whole(self, chat: bool, http: HTTPRequest) -> dict[str, Any]:
        pieces = self.pieces
        # A client that leaves stops its generation here too, not only when streaming.
        gone = asyncio.ensure_future(_disconnected(http))
        try:
            async for event in self._events(gone):
                if event.kind == "text":
                    pieces.append(event.text)
                else:
                    body = answer(
                        chat, self.ident, self.request.model, "".join(pieces),
                        event.finish_reason or "stop",
                        usage(event.prompt_tokens, event.completion_tokens),
                    )  # fmt: skip
                    body["system_fingerprint"] = self.fingerprint
                    return body
            raise APIError(499, "the client closed the request")
        finally:
            gone.cancel()
            self.end()

    def _text(self) -> dict[str, Any]:
        """The prompt (chat messages, or a completion's text) and the answer, for feedback."""
        prompt = self.request.messages if self.request.messages is not None else self.request.prompt
        return {"prompt": prompt, "answer": "".join(self.pieces)}

    async def stream(self, chat: bool) -> AsyncIterator[bytes]:
        try:
            async for event in self._events():
                if event.kind == "text":
                    self.pieces.append(event.text)
                    data = chunk(chat, self.ident, self.request.model, self.created, event.text, None, first=self.first)  # fmt: skip
                    self.first = False
                    yield _sse(data, self.fingerprint)
                    continue
                yield _sse(chunk(chat, self.ident, self.request.model, self.created, "", event.finish_reason, first=self.first), self.fingerprint)  # fmt: skip
                if self.request.include_usage:
                    final = chunk(chat, self.ident, self.request.model, self.created, None, None)
                    final["usage"] = usage(event.prompt_tokens, event.completion_tokens)
                    yield _sse(final, self.fingerprint)
                yield b"data: [DONE]\n\n"
        except APIError as exc:  # mid-stream: the status is sent already; the error is an event
            yield _sse(exc.body(), None)
        finally:
            self.end()  # also when the client went away: its row leaves the batch

    async def _events(self, gone: asyncio.Future[None] | None = None) -> AsyncIterator[Event]:
        """The engine's events for this request; they stop early when ``gone`` completes."""
        metrics, model = self.server.metrics, self.request.model
        while True:
            if gone is None:
                event = await self.events.get()
            else:
                getting = asyncio.ensure_future(self.events.get())
                waiting: set[asyncio.Future[Any]] = {getting, gone}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                event = getting.result()
            if event.kind == "text" and not self.answered:
                self.answered = True
                metrics.first_token.labels(model).observe(time.monotonic() - self.started)
            if event.kind == "error":
                if self._answer_on_stable():
                    continue
                self.status = "500"
                raise APIError(500, event.text, kind="server_error")
            if event.kind == "done":
                self.status = "200"
                self.tokens = event.completion_tokens
                metrics.prompt_tokens.labels(model).inc(event.prompt_tokens)
                metrics.generated_tokens.labels(model).inc(event.completion_tokens)
            yield event
            if event.kind == "done":
                return

    def _answer_on_stable(self) -> bool:
        """A rollout's candidate failed before any text: its failure counts against it, and
        the stable version answers the client instead (nothing is lost to a bad candidate)."""
        route = self.route
        if route is None or route.variant != CANDIDATE or self.answered or self.adapter is None:
            return False
        record(self.server, route, "500", time.monotonic() - self.started, 0)
        self.server.adapters.release(self.adapter)
        self.adapter, self.route = stable_instead(self.server, route)
        if self.adapter is None:  # stable is gone too (unloaded): the error stands, counted
            self.route = None
            return False
        self.fingerprint = f"{self.request.model}@{self.adapter.version or self.adapter.internal}"
        job = self.job
        self.job = Job(job.prompt_ids, self.adapter.internal, job.sampling, emit=job.emit)
        self.server.engine.submit(self.job)
        return True

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.job.cancelled.set()  # a no-op for a finished job; frees a disconnected one's row
        if self.adapter:
            self.server.adapters.release(self.adapter)
        elapsed = time.monotonic() - self.started
        if self.route is not None:
            record(self.server, self.route, self.status, elapsed, self.tokens)
        if self.status == "200":  # what a rating sent to /v1/feedback is about
            self.server.rollouts.remember(self.ident, {
                "model": self.request.model,
                "version": self.adapter.version if self.adapter else None,
                "variant": self.route.variant if self.route else None,
                "rollout": self.route.rollout if self.route else None,
            }, self._text() if self.server.feedback_text else None)  # fmt: skip
        metrics = self.server.metrics
        metrics.requests.labels(self.request.model, self.endpoint, self.status).inc()
        metrics.latency.labels(self.request.model, self.endpoint).observe(
            time.monotonic() - self.started
        )
        logger.info(
            "%s %s %s %.3fs", self.endpoint, self.request.model, self.fingerprint,
            time.monotonic() - self.started,
        )  # fmt: skip


async def _disconnected(http: HTTPRequest) -> None:
    """Returns when the client has gone (the body is read already: only a disconnect is left)."""
    while (await http.receive())["type"] != "http.disconnect":
        pass


def _sse(data: dict[str, Any], fingerprint: str | None) -> bytes:
    if fingerprint and "object" in data:
        data["system_fingerprint"] = fingerprint
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


# ---- adapters (vLLM's runtime API) ----------------------------------------------------------


async def _load(server: ModelServer, request: HTTPRequest, caller: Caller) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    name, path = body.get("lora_name"), body.get("lora_path")
    _refuse_hidden(name)
    if not isinstance(name, str) or not server.valid_name(name):
        raise bad("lora_name must be a name: letters, digits, '.', '_', '-'", "lora_name")
    if not isinstance(path, str) or not path:
        raise bad("lora_path is required: an adapter folder or a registry reference", "lora_path")
    if name == server.base_name:
        raise bad(f"{name!r} is the base model's name", "lora_name")
    replace = body.get("load_inplace") is True
    if server.adapters.get(name) and not replace:
        raise bad(
            f"the adapter {name!r} is loaded already; pass load_inplace: true to replace it",
            "lora_name",
        )
    try:
        adapter = await run_in_threadpool(server.load_adapter, name, path, caller)
    except AdapterError as exc:
        raise bad(str(exc), "lora_path") from None
    return PlainTextResponse(
        f"Success: LoRA adapter '{adapter.name}' added successfully."
        if not replace
        else f"Success: LoRA adapter '{adapter.name}' replaced successfully."
    )


async def _unload(server: ModelServer, request: HTTPRequest, caller: Caller) -> Response:
    body = await json_body(request)
    name = body.get("lora_name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise bad("lora_name is required", "lora_name")
    _refuse_hidden(name)
    try:
        await run_in_threadpool(server.unload_adapter, name, caller)
    except KeyError:
        raise _not_loaded(name) from None
    return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")


def _not_loaded(name: str) -> APIError:
    message = f"no adapter named {name!r} is loaded"
    return APIError(404, message, param="lora_name", code="model_not_found")


def _refuse_hidden(name: Any) -> None:
    """A rollout's other versions (NAME#candidate, NAME#previous) are the rollout's to load and
    unload: one unloaded by hand would leave the rollout nothing to promote or switch back to."""
    if isinstance(name, str) and hidden(name):
        public = name.partition("#")[0]
        raise bad(
            f"{name!r} is a version a rollout of {public!r} keeps loaded, not for loading or "
            f"unloading by hand: end the rollout with lfm rollout promote, abort or finish "
            f"({public} --env ENV), or unload {public!r} itself",
            "lora_name",
        )
