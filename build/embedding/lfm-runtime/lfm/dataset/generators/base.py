"""The generator interface, its settings, and the factory that picks a backend."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import DatasetError
from ..model import Chunk, Pair

BACKENDS = ("offline", "openai", "transformers")
QUESTIONS_PER_CHUNK = 3  # when the config sets no count


class Generator(Protocol):
    """Makes question/answer pairs from the chunks of one document."""

    name: str

    @property
    def stats(self) -> dict[str, int]:
        """Counters that go into the report (requests, cache hits, failures)."""
        ...

    def pairs(self, chunks: list[Chunk], count: list[int]) -> list[Pair]:
        """Up to ``count[i]`` pairs from ``chunks[i]``."""
        ...

    def paraphrase(self, questions: list[str]) -> list[str | None]:
        """A rewording of each question (None where none is available)."""
        ...


@dataclass(frozen=True)
class GenerationSettings:
    backend: str = "offline"  # offline | openai | transformers
    model: str = "offline"  # model name for openai, path or id for transformers
    questions_per_doc: int | None = None  # spread over the document's chunks
    questions_per_chunk: int | None = None  # when set, overrides questions_per_doc
    base_url: str | None = None
    api_key_env: str | None = None  # the NAME of the variable that holds the key
    temperature: float = 0.2
    max_new_tokens: int = 512
    max_retries: int = 4
    requests_per_minute: float = 0  # 0: no limit
    concurrency: int = 4
    batch_size: int = 8  # prompts per generate() call of a local (transformers) model
    timeout: float = 60.0
    cache_dir: Path | None = None
    with_context: bool = False  # put the chunk in the example's input field

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise DatasetError(f"generator {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.backend == "openai" and not self.base_url:
            raise DatasetError(
                "the openai generator needs base_url (e.g. https://api.openai.com/v1 or "
                "http://localhost:8000/v1)"
            )
        if (self.questions_per_doc or 1) < 1 or (self.questions_per_chunk or 1) < 1:
            raise DatasetError("questions per document/chunk must be at least 1")


def allocate(chunks: list[Chunk], settings: GenerationSettings) -> list[int]:
    """How many questions to ask of each chunk: per chunk (``QUESTIONS_PER_CHUNK`` when neither
    count is set, so a long document gives as many more pairs as it has more to say), or the
    per-document total spread over the chunks (earlier chunks first; at most ceil(total/chunks)
    each)."""
    if settings.questions_per_doc is None or settings.questions_per_chunk is not None:
        return [settings.questions_per_chunk or QUESTIONS_PER_CHUNK] * len(chunks)
    if not chunks:
        return []
    total = settings.questions_per_doc
    each = math.ceil(total / len(chunks))
    counts = []
    for _ in chunks:
        counts.append(min(each, total))
        total -= counts[-1]
    return counts


def build_generator(settings: GenerationSettings) -> Generator:
    if settings.backend == "offline":
        from .offline import OfflineGenerator

        return OfflineGenerator()
    from .llm import LLMGenerator

    if settings.backend == "openai":
        from .openai_client import OpenAIClient

        return LLMGenerator(OpenAIClient.from_settings(settings), settings)
    from .cache import ReplyCache
    from .transformers_client import TransformersClient

    client = TransformersClient(
        settings.model,
        settings.max_new_tokens,
        batch_size=settings.batch_size,
        cache=ReplyCache(settings.cache_dir),
    )
    return LLMGenerator(client, settings)


def pick_backend(model: str, base_url: str | None) -> str:
    """`offline` by name, `openai` when an endpoint is given, else a local transformers model."""
    if model == "offline":
        return "offline"
    return "openai" if base_url else "transformers"
