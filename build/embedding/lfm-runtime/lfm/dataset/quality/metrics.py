"""Dataset-level metrics, accumulated one kept record at a time.

- ``diversity_score``: mean of distinct-1 and distinct-2 (unique / total word uni- and bigrams)
  over the prompts, on the first ``SAMPLE`` records so the cost stays bounded;
- ``quality_score``: mean heuristic quality of the kept records;
- ``coherence_score``: mean coherence of the kept records, when coherence is scored;
- ``domain_relevance``: mean domain relevance of the kept records, when it is scored
  (:mod:`.relevance`);
- ``coverage_analysis``: how many documents and chunks yielded at least one kept record.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

from .checks import Item

SAMPLE = 20_000
_WORD = re.compile(r"\w+")


class Metrics:
    def __init__(self) -> None:
        self.lengths: list[int] = []  # characters per kept record, for the histogram
        self.quality: list[float] = []
        self.coherence: list[float] = []
        self.relevance: list[float] = []
        self.unigrams: set[int] = set()
        self.bigrams: set[int] = set()
        self.total_unigrams = 0
        self.total_bigrams = 0
        self.sources: Counter[str] = Counter()
        self.chunks: set[tuple[str, int]] = set()
        self.kinds: Counter[str] = Counter()

    def add(self, item: Item) -> None:
        self.lengths.append(len(item.text))
        if "quality" in item.scores:
            self.quality.append(item.scores["quality"])
        if "coherence" in item.scores:
            self.coherence.append(item.scores["coherence"])
        if "domain_relevance" in item.scores:
            self.relevance.append(item.scores["domain_relevance"])
        if item.source is not None:
            self.sources[item.source] += 1
            if item.chunk is not None:
                self.chunks.add((item.source, item.chunk))
        self.kinds[item.kind or "record"] += 1
        if len(self.lengths) <= SAMPLE:
            words = [w.lower() for w in _WORD.findall(item.prompt or item.text)]
            self.total_unigrams += len(words)
            self.total_bigrams += max(0, len(words) - 1)
            self.unigrams.update(hash(w) for w in words)
            self.bigrams.update(hash(pair) for pair in zip(words, words[1:], strict=False))

    def diversity(self) -> float:
        if not self.total_unigrams:
            return 0.0
        d1 = len(self.unigrams) / self.total_unigrams
        d2 = len(self.bigrams) / self.total_bigrams if self.total_bigrams else d1
        return round((d1 + d2) / 2, 4)

    def summary(self, documents: int, chunks: int) -> dict[str, Any]:
        lengths = self.lengths
        extra = {}
        if self.coherence:  # only when coherence is scored
            extra["coherence_score"] = round(statistics.fmean(self.coherence), 4)
        if self.relevance:  # only when domain relevance is scored
            extra["domain_relevance"] = round(statistics.fmean(self.relevance), 4)
        return extra | {
            "diversity_score": self.diversity(),
            "quality_score": round(statistics.fmean(self.quality), 4) if self.quality else None,
            "length_chars": {
                "min": min(lengths, default=0),
                "median": statistics.median(lengths) if lengths else 0,
                "max": max(lengths, default=0),
                "mean": round(statistics.fmean(lengths), 1) if lengths else 0,
            },
            "by_kind": dict(sorted(self.kinds.items())),
            "coverage_analysis": {
                "documents": documents,
                "documents_with_records": len(self.sources),
                "document_coverage": round(len(self.sources) / documents, 4) if documents else None,
                "chunks": chunks,
                "chunks_with_records": len(self.chunks),
                "chunk_coverage": round(len(self.chunks) / chunks, 4) if chunks else None,
            },
        }
