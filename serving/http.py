"""What every lfm server's HTTP side shares: routes that check the caller's key and role and
answer errors in OpenAI's shape, the localhost rule without keys, a bounded JSON body, and the
/health and /metrics routes. The generation server (app.py) and the embedding-only server
(embedding_server.py) are both built from these.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .auth import Caller, Keys
from .metrics import Metrics
from .protocol import APIError, bad

MAX_BODY_BYTES = 4 << 20  # a request body larger than this is refused before parsing

# A route's handler: (the server, the request, the caller, or None on a route without a role).
Handler = Callable[..., Awaitable[Response]]


class Served(Protocol):
    """What the shared pieces read of a server."""

    keys: Keys
    metrics: Metrics


def route(
    server: Served, path: str, handler: Handler, methods: list[str], role: str | None
) -> Route:
    """``handler`` at ``path``, behind ``role`` (None: no key needed); an APIError it raises
    is the response, in OpenAI's shape."""

    async def endpoint(request: HTTPRequest) -> Response:
        try:
            caller = authorize(server, request, role) if role else None
            return await handler(server, request, caller)
        except APIError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    return Route(path, endpoint, methods=methods)


def middleware(server: Served) -> list[Middleware]:
    """Without keys every caller is admin, so only this machine may call, by name too: a web
    page's script cannot reach it through DNS rebinding (another name for 127.0.0.1)."""
    if server.keys.enabled:
        return []
    local = ["127.0.0.1", "localhost", "[::1]", "::1"]
    return [Middleware(TrustedHostMiddleware, allowed_hosts=local)]


async def http_error(request: HTTPRequest, exc: Exception) -> Response:
    """Starlette's own errors (no such route, wrong method) in OpenAI's shape too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "server error"
    return JSONResponse(
        APIError(status, f"{request.url.path}: {detail}").body(), status_code=status
    )


def authorize(server: Served, request: HTTPRequest, role: str) -> Caller:
    caller = server.keys.caller(request.headers.get("authorization"))
    if caller is None:
        raise APIError(
            401,
            "a valid API key is required (Authorization: Bearer KEY)",
            kind="authentication_error",
            code="invalid_api_key",
        )
    if not caller.may(role):
        raise APIError(
            403,
            f"this key's role is {caller.role}; this needs {role}",
            kind="permission_error",
            code="insufficient_role",
        )
    return caller


async def json_body(request: HTTPRequest) -> Any:
    """The request's JSON body, at most MAX_BODY_BYTES, sent as application/json."""
    # A browser sends text/plain across sites without asking first; JSON it must ask for.
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise APIError(415, "send the body as JSON (Content-Type: application/json)")
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > MAX_BODY_BYTES:
        raise APIError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise APIError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise bad(f"the request body is not JSON: {exc}") from None


async def health(server: Served, request: HTTPRequest, caller: None) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(server: Served, request: HTTPRequest, caller: Caller) -> Response:
    return PlainTextResponse(
        server.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
