"""Domain relevance: how close a record is to what the source documents are about.

A record's score is the cosine similarity between its TF-IDF vector and that of the *nearest
passage* (chunk) of the document collection, in [0, 1]:

- IDF is computed over the collection's chunks, so the terms that make the domain distinctive
  (``tensiometer``, ``valve``) weigh much and the words every passage uses weigh little; English
  stop words are dropped and term frequency is sublinear (1 + log tf), so a repeated word does
  not dominate;
- the nearest passage rather than the collection's centroid: a corpus covers many topics, and a
  relevant record is close to one of them, not to their average (a centroid score falls as the
  corpus grows broader, whatever the record);
- a record is scored on its question and answer; an included context (the chunk itself, with
  ``include_context``) is left out, since it would match its own passage by construction.

A record about what the documents cover shares their distinctive terms with some passage and
scores high (the offline generator's records on the test documents: mean 0.74, the weakest
about 0.2); one about something else shares at most incidental words and scores near 0. It is
offline and deterministic: scikit-learn's ``HashingVectorizer`` (no vocabulary to hold; chunks
are added as they stream past) and ``TfidfTransformer``. Memory: one sparse row of term counts
per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..chunking import ChunkSettings, TokenCounter, chunk_sections
from ..discover import discover
from ..readers import Unreadable, read_file
from .checks import Item

N_FEATURES = 2**20  # hashed term space; collisions are rare at corpus vocabularies


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=N_FEATURES, alternate_sign=False, norm=None, stop_words="english"
    )


class RelevanceIndex:
    """Add the collection's passages (:meth:`add`), then score records (:meth:`scores`)."""

    def __init__(self) -> None:
        self._hashing = _vectorizer()
        self._counts: list[Any] = []  # sparse term counts, one matrix per added batch
        self._passages: Any = None  # (terms x passages) TF-IDF, built on the first score
        self._tfidf: Any = None

    @property
    def passages(self) -> int:
        return sum(m.shape[0] for m in self._counts)

    def add(self, texts: Sequence[str]) -> None:
        if self._passages is not None:
            raise RuntimeError("passages are added before the first record is scored")
        if texts:
            self._counts.append(self._hashing.transform(texts))

    def _build(self) -> None:
        from scipy.sparse import vstack
        from sklearn.feature_extraction.text import TfidfTransformer

        counts = vstack(self._counts).tocsr()
        self._tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
        # Transposed so that a record's few terms pick out the passages that share them.
        self._passages = self._tfidf.transform(counts).T.tocsr()
        self._counts = []

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Each text's similarity to its nearest passage (0.0 with no passages)."""
        if not texts:
            return []
        if self._passages is None:
            if not self._counts:
                return [0.0] * len(texts)
            self._build()
        records = self._tfidf.transform(self._hashing.transform(texts))
        nearest = (records @ self._passages).max(axis=1).toarray().ravel()
        return [round(min(1.0, float(x)), 4) for x in nearest]

    def score_items(self, items: Iterable[Item]) -> None:
        """Set ``scores["domain_relevance"]`` on each item."""
        items = list(items)
        for item, score in zip(items, self.scores([record_text(i) for i in items]), strict=True):
            item.scores["domain_relevance"] = score


def record_text(item: Item) -> str:
    """What a record says: its prompt and response, without an included context."""
    prompt = item.prompt
    if item.context and item.context in prompt:
        prompt = prompt.replace(item.context, " ")
    return f"{prompt}\n{item.response}"


def index_documents(
    sources: Sequence[str], chunk: ChunkSettings, count: TokenCounter
) -> RelevanceIndex:
    """An index of the passages of the documents under ``sources`` (for `dataset check`), cut
    as `dataset create` cuts them; unreadable files are skipped, as create skips them."""
    index = RelevanceIndex()
    for file in discover(sources):
        if file.skipped is not None:
            continue  # a link lfm does not follow: create skips it too
        try:
            sections = read_file(file.path)
        except (Unreadable, OSError):
            continue
        index.add([c.text for c in chunk_sections(file.name, sections, chunk, count)])
    return index
