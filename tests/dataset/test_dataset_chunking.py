"""Chunks stay under the token budget, overlap, and never cross a heading."""

from __future__ import annotations

from lfm.dataset.chunking import ChunkSettings, chunk_sections, count_words
from lfm.dataset.model import Section


def _para(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i} is word number {i}." for i in range(n))


def test_chunks_respect_size_and_paragraphs():
    text = "\n\n".join(_para(6, f"P{k}x") for k in range(8))  # 8 paragraphs of ~36 tokens
    chunks = chunk_sections("doc", [Section(text)], ChunkSettings(size=100, overlap=0), count_words)
    assert len(chunks) > 2
    assert all(c.tokens <= 100 for c in chunks)
    # No paragraph is cut when paragraphs fit: every paragraph lies whole in one chunk.
    for k in range(8):
        assert any(_para(6, f"P{k}x") in c.text for c in chunks)


def test_overlap_repeats_the_last_sentences():
    text = "\n\n".join(_para(6, f"P{k}x") for k in range(8))
    chunks = chunk_sections(
        "doc", [Section(text)], ChunkSettings(size=100, overlap=20), count_words
    )
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = before.text.split(". ")[-1].rstrip(".")
        assert last_sentence in after.text
        assert after.tokens <= 100


def test_chunks_never_cross_headings():
    sections = [Section("Alpha text here.", heading="A"), Section("Beta text here.", heading="B")]
    chunks = chunk_sections("doc", sections, ChunkSettings(size=500, overlap=40), count_words)
    assert [(c.heading, c.text) for c in chunks] == [
        ("A", "Alpha text here."), ("B", "Beta text here."),
    ]  # fmt: skip


def test_long_sentence_is_split_at_words():
    text = " ".join(f"w{i}" for i in range(300))
    chunks = chunk_sections("doc", [Section(text)], ChunkSettings(size=50, overlap=0), count_words)
    assert all(c.tokens <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_tokenizer_counts_are_used(tmp_path):
    calls = []

    def count(text: str) -> int:
        calls.append(text)
        return 2 * count_words(text)

    text = "\n\n".join(_para(6, f"P{k}x") for k in range(4))
    chunks = chunk_sections("doc", [Section(text)], ChunkSettings(size=100, overlap=0), count)
    assert calls and all(c.tokens <= 100 for c in chunks) and len(chunks) >= 3
