"""``dataset_report.json`` (every count and score) and the outputs built from it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .card import render_card, write_histogram
from .quality.checks import REASONS

if TYPE_CHECKING:
    from .create import Tally
    from .options import CreateOptions
    from .publish import Staging

# 2: augmentation group metadata, domain relevance; 3: questions from sentence grammar, question
# checks and the model judge, documents that gave no records.
REPORT_VERSION = 3

REASON_TEXT = {
    "too_short": "shorter than minimum_length characters",
    "too_long": "longer than maximum_length characters",
    "pii": "held personal data (pii: drop)",
    "wrong_language": "not in the configured language",
    "toxic": "toxicity score above toxicity_threshold",
    "malformed_question": "question cut from a clause fragment: its subject opens with a "
    "pronoun or clause word, or it ends on one (question_check)",
    "low_judge_score": "the generator's model rated the pair below min_judge_score (model_judge)",
    "low_quality": "heuristic quality score below min_quality_score",
    "ungrounded": "answer not supported by its source chunk (factual_verification)",
    "incoherent": "coherence score below min_coherence_score",
    "off_domain": "domain relevance (similarity to the nearest source passage) below "
    "min_domain_relevance",
    "exact_duplicate": "same text as an earlier record",
    "near_duplicate": "near duplicate (MinHash LSH) of an earlier record",
}


def build_report(options: CreateOptions, tally: Tally, metrics: dict[str, Any]) -> dict[str, Any]:
    """The report: no timestamps or machine paths, so equal inputs give equal reports."""
    assessed = sum(tally.split_records.values()) + sum(tally.removed.values())
    return {
        "report_version": REPORT_VERSION,
        "sources": list(options.sources),
        "format": options.format,
        "settings": options.fingerprint(),
        "generator": {
            "backend": "chunks" if options.format == "completion" else options.generation.backend,
            "model": options.generation.model,
            "stats": tally.generator_stats,
        },
        "documents": {
            "found": tally.documents,
            "read": tally.documents - len(tally.skipped),
            "skipped": tally.skipped,
            "without_records": tally.without_records,
        },
        "chunks": tally.chunks,
        "generated_pairs": tally.generated,
        "augmented_pairs": tally.augmented,
        "records_assessed": assessed,
        "filters": {
            reason: {"removed": tally.removed.get(reason, 0), "why": REASON_TEXT[reason]}
            for reason in REASONS
        },
        "pii_redacted": dict(sorted(tally.pii.items())) if options.quality.pii == "redact" else {},
        "records": {
            "kept": sum(tally.split_records.values()),
            "train": tally.split_records.get("train", 0),
            "test": tally.split_records.get("test", 0),
        },
        "split": {
            "ratio": options.split_ratio,
            "seed": options.seed,
            "by": "source document",
            "train_documents": len(tally.split_documents["train"]),
            "test_documents": len(tally.split_documents["test"]),
        },
        "metrics": metrics,
    }


def write_outputs(
    report: dict[str, Any], lengths: list[int], examples: list[dict[str, Any]], staging: Staging
) -> None:
    names = {role: staging.targets[role].name for role in staging.targets}
    has_histogram = write_histogram(lengths, staging.path("histogram"))
    staging.path("report").write_text(
        json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    card = render_card(report, examples, names, has_histogram=has_histogram)
    staging.path("card").write_text(card, encoding="utf-8")
