"""The values that flow through the pipeline: sections, chunks and generated pairs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A run of text from one place in a document: a page, or the text under a heading."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A token-bounded piece of one document, the unit questions are generated from."""

    source: str  # the document's path relative to the source root
    index: int  # position within the document
    text: str
    tokens: int
    page: int | None = None
    heading: str | None = None

    def metadata(self) -> dict[str, object]:
        meta: dict[str, object] = {"source": self.source, "chunk": self.index}
        if self.page is not None:
            meta["page"] = self.page
        if self.heading:
            meta["section"] = self.heading
        return meta


@dataclass(frozen=True)
class Pair:
    """One question and its answer, with the chunk it was generated from."""

    question: str
    answer: str
    chunk: Chunk
    kind: str  # how it was made: heading, definition, key_sentence, llm, template, paraphrase
    extra: dict[str, object] = field(default_factory=dict)
