"""`POST /v1/embeddings` in OpenAI's shape, for embedding models (`task: embedding`).

`lfm serve --embedding NAME=REF` loads a sentence-transformers model (a training output folder, a
model folder, or a registry reference such as ``retriever:1.0.0``) under NAME. A request

    {"model": NAME, "input": "text" | ["text", ...], "encoding_format": "float" | "base64"}

is answered with

    {"object": "list", "model": NAME,
     "data": [{"object": "embedding", "index": 0, "embedding": [...]}, ...],
     "usage": {"prompt_tokens": N, "total_tokens": N}}

(``base64``: each vector as little-endian float32 bytes, as OpenAI's clients decode it). Vectors
are what the model outputs (normalized when its modules end in a Normalize layer, as
all-MiniLM-L6-v2's and every lfm-trained one's do).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .protocol import APIError

if TYPE_CHECKING:
    from starlette.requests import Request as HTTPRequest
    from starlette.responses import Response

    from .auth import Caller
    from .metrics import Metrics

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
MAX_CHARS = 32_768  # per input: far beyond any encoder's window, small enough to refuse abuse
BATCH = 32  # inputs encoded together (one batch's token vectors in memory at a time)


@dataclass(frozen=True)
class _Served:
    model: Any  # a SentenceTransformer
    reference: str  # as given on the command line
    loaded_at: float


def resolve(name: str, reference: str) -> Path:
    """The folder of ``reference`` (a folder or a registry reference), checked to be a
    sentence-transformers model; a ValueError naming ``--embedding NAME=REF`` otherwise."""
    from lfm.deploy import DeployError, resolve_model_reference

    try:
        resolved = resolve_model_reference(reference)
    except DeployError as exc:
        reason = str(exc).removeprefix(f"--model {reference}: ")
        raise ValueError(f"--embedding {name}={reference}: {reason}") from None
    if not (resolved.path / "modules.json").is_file():
        raise ValueError(
            f"--embedding {name}={reference}: {resolved.path} is not a sentence-transformers "
            "model (no modules.json); train one with task: embedding"
        )
    return resolved.path


class EmbeddingModels:
    """The embedding models a server answers /v1/embeddings for, by public name."""

    def __init__(self) -> None:
        self._models: dict[str, _Served] = {}
        self._lock = threading.Lock()  # encode() is not safe to call from two threads at once

    def names(self) -> list[str]:
        return sorted(self._models)

    def load(self, name: str, reference: str) -> None:
        """Load ``reference`` (a folder or a registry reference) as ``name``."""
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(resolve(name, reference)), device="cpu")
        self._models[name] = _Served(model, reference, time.time())

    def listed(self) -> list[dict[str, Any]]:
        """/v1/models entries, one per embedding model."""
        return [
            {
                "id": name,
                "object": "model",
                "created": int(served.loaded_at),
                "owned_by": "lfm",
                "root": served.reference,
                "parent": None,
                "lfm": {
                    "kind": "embedding",
                    "source": served.reference,
                    "dimensions": served.model.get_embedding_dimension(),
                },
            }
            for name, served in sorted(self._models.items())
        ]

    def embed(self, name: str, texts: list[str]) -> tuple[list[list[float]], int]:
        """Each text's vector, and the tokens read (from the same tokenization: the attention
        mask encode() returns beside each vector)."""
        model = self._models[name].model
        vectors: list[list[float]] = []
        tokens = 0
        with self._lock:
            for start in range(0, len(texts), BATCH):
                outputs = model.encode(
                    texts[start : start + BATCH],
                    output_value=None,  # every output: the vector and the attention mask
                    batch_size=BATCH,
                    show_progress_bar=False,
                )
                for out in outputs:
                    tokens += int(out["attention_mask"].sum())
                    vectors.append([float(x) for x in out["sentence_embedding"].tolist()])
        return vectors, tokens


class EmbeddingHost(Protocol):
    """What /v1/embeddings needs of a server: a ModelServer, or an EmbeddingServer alone."""

    embeddings: EmbeddingModels
    metrics: Metrics


def parse(body: Any, served: list[str]) -> tuple[str, list[str], str]:
    """(model, inputs, encoding_format) from a request body; a bad one is an APIError 400."""
    if not isinstance(body, Mapping):
        raise APIError(400, "the body must be a JSON object")
    model = body.get("model")
    if model not in served:
        listed = ", ".join(served) or "none (start lfm serve with --embedding NAME=REF)"
        raise APIError(404, f"the embedding model {model!r} is not served here (served: {listed})")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise APIError(400, "input must be a non-empty string or a list of non-empty strings")
    if len(texts) > MAX_INPUTS or any(len(t) > MAX_CHARS for t in texts):
        raise APIError(400, f"at most {MAX_INPUTS} inputs of at most {MAX_CHARS} characters")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise APIError(400, "encoding_format must be 'float' or 'base64'")
    return str(model), texts, str(encoding)


def response(model: str, vectors: list[list[float]], tokens: int, encoding: str) -> dict[str, Any]:
    return {
        "object": "list",
        "model": model,
        "data": [
            {"object": "embedding", "index": i, "embedding": _encoded(v, encoding)}
            for i, v in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


async def embeddings_endpoint(
    server: EmbeddingHost, request: HTTPRequest, caller: Caller | None
) -> Response:
    """The route app.py registers: parse, embed in a worker thread, answer, count."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    from .app import _json

    started = time.monotonic()
    models, metrics = server.embeddings, server.metrics
    served = models.names()
    body = await _json(request)
    # Only a served name is a label: each new string a client sends would be a new time series.
    asked = body.get("model") if isinstance(body, Mapping) else None
    label = asked if isinstance(asked, str) and asked in served else "unknown"
    try:
        name, texts, encoding = parse(body, served)
    except APIError as exc:
        metrics.requests.labels(label, "embeddings", str(exc.status)).inc()
        raise
    vectors, tokens = await run_in_threadpool(models.embed, name, texts)
    metrics.requests.labels(name, "embeddings", "200").inc()
    metrics.latency.labels(name, "embeddings").observe(time.monotonic() - started)
    metrics.prompt_tokens.labels(name).inc(tokens)
    return JSONResponse(response(name, vectors, tokens, encoding))
