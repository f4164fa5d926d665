"""The per-document work: read, chunk, and (for the offline generator) generate and assess.

:func:`process_file` runs in worker processes, so it takes and returns plain picklable values;
the per-process tokenizer and scorer are built once per process and cached here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from . import augment as augmentation
from .chunking import TokenCounter, chunk_sections, count_words, tokenizer_counter
from .discover import SourceFile
from .formats import AUGMENTED_FROM, EXAMPLE_ID, qa_messages
from .generators.base import Generator, allocate, build_generator
from .model import Chunk, Pair
from .options import CreateOptions
from .quality import Item, assess
from .quality.dedup import signature
from .quality.toxicity import load_scorer
from .readers import Unreadable, read_file
from .tokenizers import load_tokenizer


@dataclass
class DocumentResult:
    name: str
    chunks: list[Chunk] = field(default_factory=list)
    skipped: str | None = None  # why the file was skipped
    assessed: list[tuple[Item, str | None]] | None = None  # None: generation left to the caller
    generated: int = 0
    augmented: int = 0


def process_file(file: SourceFile, options: CreateOptions) -> DocumentResult:
    result = DocumentResult(file.name, skipped=file.skipped)
    if file.skipped is not None:
        return result  # a link lfm does not follow: never opened
    try:
        sections = read_file(file.path)
    except Unreadable as why:
        result.skipped = str(why)
        return result
    except OSError as err:
        result.skipped = f"cannot read ({err.strerror or err})"
        return result
    result.chunks = chunk_sections(file.name, sections, options.chunk, _counter(options.tokenizer))
    if options.format == "completion" or options.generation.backend == "offline":
        generate_and_assess(result, _offline(), options)
    return result


def generate_and_assess(
    result: DocumentResult, generator: Generator, options: CreateOptions
) -> None:
    """Fill ``result.assessed`` with every item made from its chunks and each removal reason."""
    if options.format == "completion":
        items = [_chunk_item(chunk, options) for chunk in result.chunks]
    else:
        pairs = generator.pairs(result.chunks, allocate(result.chunks, options.generation))
        result.generated = len(pairs)
        items = [_pair_item(p, f"{p.chunk.source}#{i}", options) for i, p in enumerate(pairs)]
        judge = getattr(generator, "judge", None)
        if options.quality.judges and judge is not None and pairs:
            for item, score in zip(items, judge(pairs), strict=True):
                if score is not None:
                    item.scores["judge"] = score
        if options.augmentation and pairs:
            paraphrases = generator.paraphrase([p.question for p in pairs])
            extra = augmentation.augment(pairs, paraphrases)
            result.augmented = len(extra)
            # A variant joins its original's group: duplicate removal keeps both.
            items += [
                _pair_item(p, f"{p.chunk.source}#{i}", options, variant=True) for i, p in extra
            ]
    scorer = _scorer(options.quality.toxicity_scorer)
    result.assessed = []
    for item in items:
        reason = assess(item, options.quality, scorer)
        if reason is None and options.quality.duplicate_detection:
            item.signature = signature(item.text)
        result.assessed.append((item, reason))


def _pair_item(pair: Pair, group: str, options: CreateOptions, *, variant: bool = False) -> Item:
    context = pair.chunk.text if options.generation.with_context else ""
    metadata = {**pair.chunk.metadata(), "kind": pair.kind} if options.include_metadata else {}
    if options.keep_passages:  # an embedding model's positive: the chunk the pair came from
        metadata.update({**pair.chunk.metadata(), "passage": pair.chunk.text})
    if options.augmentation:
        # The group travels with the records (even without include_metadata), so that
        # `dataset check` does not take an original and its variants for near duplicates.
        metadata[AUGMENTED_FROM if variant else EXAMPLE_ID] = group
    return Item(
        messages=qa_messages(pair.question, pair.answer, context),
        source=pair.chunk.source,
        context=pair.chunk.text,
        group=group,
        chunk=pair.chunk.index,
        metadata=metadata or None,
        kind=pair.kind,
    )


def _chunk_item(chunk: Chunk, options: CreateOptions) -> Item:
    return Item(
        messages=[{"role": "assistant", "content": chunk.text}],
        source=chunk.source,
        group=f"{chunk.source}#{chunk.index}",
        chunk=chunk.index,
        metadata=chunk.metadata() if options.include_metadata else None,
        kind="chunk",
    )


@lru_cache(maxsize=4)
def _counter(tokenizer: str | None) -> TokenCounter:
    if tokenizer is None:
        return count_words
    return tokenizer_counter(load_tokenizer(tokenizer))


@lru_cache(maxsize=1)
def _offline() -> Generator:
    from .generators.base import GenerationSettings

    return build_generator(GenerationSettings())


@lru_cache(maxsize=4)
def _scorer(spec: str | None) -> Any:
    return load_scorer(spec)
