"""`lfm dataset check`: run quality control over an existing dataset file and report, removing
nothing. Alpaca ``input`` text counts as the answer's context for the grounding score. Records
that augmentation made from one original (``metadata.augmented_from`` naming the original's
``metadata.example_id``) are one group: they are never near duplicates of one another."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from lfm.runtime.dataset_gates import evaluate as evaluate_gates

from .chunking import ChunkSettings, count_words, tokenizer_counter
from .errors import DatasetError
from .formats import augmentation_group, detect, to_messages
from .jsonl import read_records
from .quality import Deduplicator, Item, QualitySettings, assess
from .quality.checks import REASONS
from .quality.dedup import signature
from .quality.metrics import Metrics
from .quality.relevance import RelevanceIndex, index_documents
from .quality.toxicity import load_scorer
from .report import REASON_TEXT


def check_file(
    path: Path,
    settings: QualitySettings,
    fmt: str = "auto",
    relevance: RelevanceIndex | None = None,
) -> dict[str, Any]:
    """The report; ``relevance`` (an index of the source documents' passages) scores each
    record's domain relevance, which settings that ask for it require."""
    if settings.scores_relevance and relevance is None:
        raise DatasetError(
            "domain relevance is scored against the source documents: give --source DOCS "
            "(or a --config whose dataset.source is a documents folder)"
        )
    scorer = load_scorer(settings.toxicity_scorer)
    dedup = (
        Deduplicator(settings.near_duplicate_threshold) if settings.duplicate_detection else None
    )
    flagged: Counter[str] = Counter()
    pii: Counter[str] = Counter()
    examples: dict[str, list[int]] = {}
    metrics = Metrics()
    total = 0
    for index, record in enumerate(read_records(path)):
        total += 1
        if fmt == "auto":
            fmt = detect(record)
        messages = to_messages(record, fmt, index)
        context = record.get("input") if isinstance(record.get("input"), str) else None
        meta = record.get("metadata")
        source = meta.get("source") if isinstance(meta, dict) else None
        # Variants that augmentation made from one record share its group: not duplicates.
        group = augmentation_group(record) or f"#{index}"
        item = Item(messages, source=source if isinstance(source, str) else None,
                    context=context or None, group=group)  # fmt: skip
        reason = assess(item, settings, scorer)
        pii.update(item.pii_found)
        if reason is None and relevance is not None:
            relevance.score_items([item])
            if item.scores["domain_relevance"] < settings.min_domain_relevance:
                reason = "off_domain"
        if reason is None and dedup is not None:
            reason = dedup.check(item.text, item.group, signature(item.text))
        if reason is None:
            metrics.add(item)
        else:
            flagged[reason] += 1
            examples.setdefault(reason, [])
            if len(examples[reason]) < 5:
                examples[reason].append(index)
    summary = metrics.summary(len(metrics.sources) or 1, 0)
    metrics_out = {k: v for k, v in summary.items() if k != "coverage_analysis"}
    if settings.coverage_analysis:
        # A dataset file does not know its corpus: only the sources its records name.
        coverage = summary["coverage_analysis"]
        metrics_out["coverage_analysis"] = {
            "documents_with_records": coverage["documents_with_records"],
            "records_per_document": _per_document(metrics),
        }
    return {
        "file": str(path),
        "records": total,
        "would_keep": total - sum(flagged.values()),
        "filters": {
            reason: {
                "flagged": flagged.get(reason, 0),
                "why": REASON_TEXT[reason],
                "first_records": examples.get(reason, []),
            }
            for reason in REASONS
        },
        "pii_found": dict(sorted(pii.items())),
        "metrics": metrics_out,
        "gates": evaluate_gates(dict(settings.gates), summary),
    }


def relevance_index(
    sources: list[str], chunk: ChunkSettings, tokenizer: str | None
) -> RelevanceIndex:
    """The source documents' passages, cut as `dataset create` cuts them (with ``tokenizer``,
    a path or id, or words when None), to score each record's domain relevance against."""
    from .tokenizers import load_tokenizer

    count = tokenizer_counter(load_tokenizer(tokenizer)) if tokenizer else count_words
    return index_documents(sources, chunk, count)


def _per_document(metrics: Metrics) -> dict[str, float]:
    """Spread of kept records over the source documents the records name."""
    counts = list(metrics.sources.values())
    if not counts:
        return {"min": 0, "max": 0, "mean": 0.0}
    return {"min": min(counts), "max": max(counts), "mean": round(sum(counts) / len(counts), 2)}
