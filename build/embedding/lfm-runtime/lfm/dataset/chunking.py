"""Split sections into token-bounded chunks with overlap, never across a heading.

A chunk is built from whole paragraphs while they fit; a paragraph too long for one chunk is cut
at sentence ends, and a sentence too long is cut at word boundaries. Consecutive chunks of a
section share up to ``overlap`` tokens: the last sentences of one chunk open the next, so a fact
cut by a boundary is still whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .model import Chunk, Section

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORDS = re.compile(r"\w+|[^\w\s]")

TokenCounter = Callable[[str], int]


def count_words(text: str) -> int:
    """Token count without a tokenizer: words and punctuation marks (close to BPE for English)."""
    return len(_WORDS.findall(text))


def tokenizer_counter(tokenizer: object) -> TokenCounter:
    """A counter backed by a Hugging Face tokenizer (the base model's, when it is available)."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    return count


@dataclass(frozen=True)
class ChunkSettings:
    size: int = 384  # tokens per chunk
    overlap: int = 48  # tokens repeated from the previous chunk of the same section

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"chunk size should be at least 16 tokens, got {self.size}")
        if not 0 <= self.overlap < self.size // 2:
            raise ValueError(f"chunk overlap should be in [0, size/2), got {self.overlap}")


def chunk_sections(
    source: str, sections: Iterable[Section], settings: ChunkSettings, count: TokenCounter
) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in sections:
        for text in _section_chunks(section.text, settings, count):
            chunks.append(
                Chunk(source, len(chunks), text, count(text), section.page, section.heading)
            )
    return chunks


def _section_chunks(text: str, settings: ChunkSettings, count: TokenCounter) -> list[str]:
    """Pack the section's pieces (paragraphs, or smaller when they are too long) into chunks."""
    pieces = [(p, count(p)) for p in _pieces(text, settings.size, count)]
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    for piece in pieces:
        if current and sum(n for _, n in current) + piece[1] > settings.size:
            chunks.append(_join(current))
            current = _tail(current, settings.overlap, settings.size - piece[1], count)
        current.append(piece)
    if current:
        chunks.append(_join(current))
    return chunks


def _pieces(text: str, size: int, count: TokenCounter) -> list[str]:
    """Paragraphs, each split at sentences (then words) only when it exceeds ``size``."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count(paragraph) <= size:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            if count(sentence) <= size:
                pieces.append(sentence)
            else:
                pieces.extend(_split_words(sentence, size, count))
    return pieces


def _split_words(sentence: str, size: int, count: TokenCounter) -> list[str]:
    words, parts, current = sentence.split(), [], []  # type: ignore[var-annotated]
    for word in words:
        if current and count(" ".join([*current, word])) > size:
            parts.append(" ".join(current))
            current = []
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _tail(
    pieces: list[tuple[str, int]], overlap: int, room: int, count: TokenCounter
) -> list[tuple[str, int]]:
    """The trailing sentences of ``pieces`` that fit in ``overlap`` tokens (and in ``room``)."""
    budget = min(overlap, room)
    if budget <= 0:
        return []
    sentences = [s for text, _ in pieces for s in _SENTENCE_END.split(text)]
    kept: list[str] = []
    used = 0
    for sentence in reversed(sentences):
        n = count(sentence)
        if used + n > budget:
            break
        kept.insert(0, sentence)
        used += n
    return [(" ".join(kept), used)] if kept else []


def _join(pieces: list[tuple[str, int]]) -> str:
    return "\n\n".join(text for text, _ in pieces)
