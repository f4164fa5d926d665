"""A server of embedding models alone: `lfm serve --embedding NAME=REF` without a MODEL.

A retriever needs no generative model beside it, so this server loads none: it answers
/v1/embeddings, /v1/models (the embedding models), /health, /ready and /metrics behind the same
API keys, body limit and localhost rule as :func:`lfm.serving.app.create_app`. The generation
routes exist and answer an OpenAI-shaped error that says what this server is, so that a client
pointed at the wrong server learns why rather than seeing a bare "no such route".
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response

from .auth import Caller, Keys
from .embeddings import EmbeddingModels, embeddings_endpoint
from .http import Handler, health, http_error, metrics, middleware, route
from .metrics import Metrics
from .protocol import APIError

# The generation server's routes this one does not serve, with the role each needs there (a
# caller without that role is refused first, as on the generation server).
GENERATION_ROUTES = (
    ("/v1/chat/completions", "read"),
    ("/v1/completions", "read"),
    ("/v1/feedback", "read"),
    ("/v1/load_lora_adapter", "operate"),
    ("/v1/unload_lora_adapter", "operate"),
)
ADAPTER_ROUTES = ("/v1/load_lora_adapter", "/v1/unload_lora_adapter")


class EmbeddingServer:
    """The state an embedding-only server keeps: who may call, its models, what it measured."""

    def __init__(self, keys: Keys) -> None:
        from lfm.runtime.quiet import quiet_third_party

        quiet_third_party()
        self.started = time.time()
        self.keys = keys
        self.embeddings = EmbeddingModels()
        # Nothing waits in a batch and no adapter is loaded here: those gauges stay at 0.
        self.metrics = Metrics(lambda: 0, lambda: 0)

    def generates(self, name: str) -> bool:
        """No model here generates (see ModelServer.generates)."""
        return False


def create_embedding_app(server: EmbeddingServer) -> Starlette:
    routes: list[tuple[str, Handler, list[str], str | None]] = [
        ("/health", health, ["GET"], None),
        ("/ready", _ready, ["GET"], None),
        ("/metrics", metrics, ["GET"], "read"),
        ("/v1/models", _models, ["GET"], "read"),
        ("/v1/embeddings", embeddings_endpoint, ["POST"], "read"),
    ]
    routes += [(path, _not_here, ["POST"], role) for path, role in GENERATION_ROUTES]
    return Starlette(
        routes=[route(server, *each) for each in routes],
        middleware=middleware(server),
        exception_handlers={HTTPException: http_error},
    )


async def _ready(server: EmbeddingServer, request: HTTPRequest, caller: Caller | None) -> Response:
    # The models load before the server listens: once it answers, it is ready.
    return JSONResponse({"status": "ready", "models": server.embeddings.names()})


async def _models(server: EmbeddingServer, request: HTTPRequest, caller: Caller | None) -> Response:
    return JSONResponse({"object": "list", "data": server.embeddings.listed()})


async def _not_here(
    server: EmbeddingServer, request: HTTPRequest, caller: Caller | None
) -> Response:
    """A generation route: no model here generates. Adapters have no base model to load onto
    (400, the request cannot apply to this server); a chat or completion names a model that is
    not served for it (404 model_not_found, as OpenAI answers an embedding model on chat)."""
    path = request.url.path
    served = ", ".join(server.embeddings.names())
    what = f"this server serves embedding models only ({served}): POST /v1/embeddings"
    if path in ADAPTER_ROUTES:
        raise APIError(
            400, f"{what}; it has no base model to load LoRA adapters onto (start `lfm serve "
            "MODEL` for adapters)", param="lora_name",
        )  # fmt: skip
    raise APIError(
        404, f"{what}; {path} needs a generative model (start `lfm serve MODEL`)",
        param="model", code="model_not_found",
    )  # fmt: skip
