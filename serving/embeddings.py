"""`POST /v1/embeddings` in OpenAI's shape, for embedding models (`task: embedding`).

`lfm serve --embedding NAME=REF` loads a sentence-transformers model (a training output folder, a
model folder, or a registry reference such as ``retriever:1.0.0``) under NAME. A request

    {"model": NAME, "input": "text" | ["text", ...], "encoding_format": "float" | "base64",
     "dimensions": D, "truncate_prompt_tokens": -1 | K}

is answered with

    {"object": "list", "model": NAME,
     "data": [{"object": "embedding", "index": 0, "embedding": [...]}, ...],
     "usage": {"prompt_tokens": N, "total_tokens": N}}

(``base64``: each vector as little-endian float32 bytes, as OpenAI's clients decode it). Vectors
are what the model outputs (normalized when its modules end in a Normalize layer, as
all-MiniLM-L6-v2's and every lfm-trained one's do).

``dimensions`` is accepted when it is the model's own dimension and refused (400) otherwise:
OpenAI truncates vectors only for models trained so that a prefix still works (Matryoshka), and
lfm's are not. An input longer than the model's ``max_seq_length`` tokens is refused (400), as
OpenAI, vLLM and Text Embeddings Inference refuse it by default, rather than silently embedding
only its start; vLLM's ``truncate_prompt_tokens`` (-1: the model's limit, or K tokens) asks for
truncation instead, keeping the start as sentence-transformers does. ``usage`` counts the tokens
embedded (after any truncation).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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
class EmbeddingRequest:
    model: str
    texts: list[str]
    encoding: str  # "float" or "base64"
    truncate: int | None  # keep this many tokens of a longer input (-1: the model's limit)


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

    def dimension(self, name: str) -> int | None:
        """The length of the model's vectors (what /v1/models lists as its dimensions)."""
        return self._models[name].model.get_embedding_dimension()

    def max_tokens(self, name: str) -> int | None:
        """The model's ``max_seq_length``: longer inputs would be cut to it."""
        return self._models[name].model.max_seq_length

    def token_counts(self, name: str, texts: list[str]) -> list[int] | None:
        """Each text's tokens before any truncation (special tokens included, as the model's
        limit counts them); None for a model without a text tokenizer to ask."""
        tokenizer = getattr(self._models[name].model, "tokenizer", None)
        if not callable(tokenizer):
            return None
        with self._lock:  # the tokenizer is the model's, shared with encode()
            ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return [len(row) for row in ids["input_ids"]]

    def embed(
        self, name: str, texts: list[str], truncate_to: int | None = None
    ) -> tuple[list[list[float]], int]:
        """Each text's vector, and the tokens embedded (from the same tokenization: the
        attention mask encode() returns beside each vector). ``truncate_to``: fewer tokens than
        the model's limit, for this call only."""
        model = self._models[name].model
        vectors: list[list[float]] = []
        tokens = 0
        with self._lock, _seq_length(model, truncate_to):
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


@contextmanager
def _seq_length(model: Any, tokens: int | None) -> Iterator[None]:
    """The model cuts inputs at ``tokens`` inside the block (None: its own limit). Callers
    hold the lock: the limit is the shared model's."""
    if tokens is None:
        yield
        return
    own = model.max_seq_length
    model.max_seq_length = tokens
    try:
        yield
    finally:
        model.max_seq_length = own


class EmbeddingHost(Protocol):
    """What /v1/embeddings needs of a server: a ModelServer, or an EmbeddingServer alone."""

    embeddings: EmbeddingModels
    metrics: Metrics

    def generates(self, name: str) -> bool: ...


def parse(
    body: Any, served: list[str], generates: Callable[[str], bool] = lambda name: False
) -> EmbeddingRequest:
    """The request in a body; a bad one is an APIError (400, or 404 for a model not served
    for embeddings: a generative one here is named as such)."""
    if not isinstance(body, Mapping):
        raise APIError(400, "the body must be a JSON object")
    model = body.get("model")
    if isinstance(model, str) and model not in served and generates(model):
        raise APIError(
            404, f"{model!r} is a generative model: POST /v1/chat/completions or "
            "/v1/completions; /v1/embeddings serves the embedding models GET /v1/models lists "
            'with "lfm": {"kind": "embedding"}', param="model", code="model_not_found",
        )  # fmt: skip
    if model not in served:
        listed = ", ".join(served) or "none (start lfm serve with --embedding NAME=REF)"
        raise APIError(
            404, f"the embedding model {model!r} is not served here (served: {listed})",
            param="model", code="model_not_found",
        )  # fmt: skip
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
    truncate = body.get("truncate_prompt_tokens")
    if truncate is not None and (not _is_int(truncate) or truncate == 0 or truncate < -1):
        raise APIError(
            400, "truncate_prompt_tokens must be -1 (the model's limit) or a positive number of "
            "tokens", param="truncate_prompt_tokens",
        )  # fmt: skip
    return EmbeddingRequest(str(model), texts, str(encoding), truncate)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_dimensions(body: Mapping[str, Any], name: str, dimension: int | None) -> None:
    """``dimensions`` is the model's own or absent: lfm's models are not trained so that a
    prefix of a vector is a vector (Matryoshka), so a shorter one is refused, not cut."""
    asked = body.get("dimensions")
    if asked is None or (dimension is not None and asked == dimension and _is_int(asked)):
        return
    if not _is_int(asked) or asked < 1:
        raise APIError(400, "dimensions must be a positive integer", param="dimensions")
    raise APIError(
        400, f"dimensions: {name}'s vectors have {dimension} dimensions, and it was not "
        "trained for shorter ones (Matryoshka); leave dimensions out or send "
        f"{dimension}", param="dimensions",
    )  # fmt: skip


def truncation(
    request: EmbeddingRequest, counts: list[int] | None, limit: int | None
) -> int | None:
    """The token limit to embed at for this request (None: the model's own), or an APIError
    for an input longer than the model's limit when the request did not ask to truncate."""
    if limit is None:
        return None
    if request.truncate is not None:
        if request.truncate > limit:
            raise APIError(
                400, f"truncate_prompt_tokens is {request.truncate}, more than "
                f"{request.model}'s limit of {limit} tokens (max_seq_length)",
                param="truncate_prompt_tokens",
            )  # fmt: skip
        return None if request.truncate in (-1, limit) else request.truncate
    for index, count in enumerate(counts or []):
        if count > limit:
            raise APIError(
                400, f"input[{index}] is {count} tokens, more than {request.model}'s limit of "
                f"{limit} (max_seq_length): shorten or split it, or send "
                f'"truncate_prompt_tokens": -1 to embed its first {limit} tokens',
                param="input", code="context_length_exceeded",
            )  # fmt: skip
    return None


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

    from .http import json_body

    started = time.monotonic()
    models, metrics = server.embeddings, server.metrics
    served = models.names()
    body = await json_body(request)
    # Only a served name is a label: each new string a client sends would be a new time series.
    asked = body.get("model") if isinstance(body, Mapping) else None
    label = asked if isinstance(asked, str) and asked in served else "unknown"
    try:
        asked = parse(body, served, server.generates)
        check_dimensions(body, asked.model, models.dimension(asked.model))
        counts = None
        if asked.truncate is None:  # only an input the model would cut needs counting first
            counts = await run_in_threadpool(models.token_counts, asked.model, asked.texts)
        keep = truncation(asked, counts, models.max_tokens(asked.model))
    except APIError as exc:
        metrics.requests.labels(label, "embeddings", str(exc.status)).inc()
        raise
    name = asked.model
    vectors, tokens = await run_in_threadpool(models.embed, name, asked.texts, keep)
    metrics.requests.labels(name, "embeddings", "200").inc()
    metrics.latency.labels(name, "embeddings").observe(time.monotonic() - started)
    metrics.prompt_tokens.labels(name).inc(tokens)
    return JSONResponse(response(name, vectors, tokens, asked.encoding))
