"""The ``README.md`` dataset card and its length histogram (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_histogram(lengths: list[int], path: Path) -> bool:
    """A PNG histogram of record lengths; False (no file) when there are no records."""
    if not lengths:
        return False
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on a training box
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2), dpi=100)
    axes.hist(lengths, bins=min(40, max(5, len(set(lengths)))), color="#3b7dd8")
    axes.set_xlabel("characters per record")
    axes.set_ylabel("records")
    axes.set_title("Record length")
    figure.tight_layout()
    # No timestamp in the PNG metadata: equal datasets give equal files.
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
    return True


def render_card(
    report: dict[str, Any],
    examples: list[dict[str, Any]],
    names: dict[str, str],
    *,
    has_histogram: bool,
) -> str:
    records, docs, split = report["records"], report["documents"], report["split"]
    metrics = report["metrics"]
    coverage = metrics.get("coverage_analysis")  # absent with coverage_analysis: false
    lines = [
        "---",
        f"task_categories: [{'text-generation' if report['format'] == 'completion' else 'question-answering'}]",
        "language: [" + (report["settings"]["quality"]["language"] or "en") + "]",
        "configs:",
        "- config_name: default",
        "  data_files:",
        f"  - split: train\n    path: {names['train']}",
    ]
    if records["test"]:
        lines.append(f"  - split: test\n    path: {names['test']}")
    lines += [
        "---",
        "",
        "# Dataset card",
        "",
        f"Built by `lfm dataset create` from {', '.join(f'`{s}`' for s in report['sources'])}: "
        f"{docs['read']} of {docs['found']} documents read, {report['chunks']} chunks, "
        f"{report['generated_pairs']} generated pairs"
        + (f" and {report['augmented_pairs']} augmentations" if report["augmented_pairs"] else "")
        + f" by the `{report['generator']['backend']}` generator.",
        "",
        "## Sizes",
        "",
        "| split | records | documents |",
        "|---|---|---|",
        f"| train | {records['train']} | {split['train_documents']} |",
        f"| test | {records['test']} | {split['test_documents']} |",
        "",
        f"Split by source document (ratio {split['ratio']}, seed {split['seed']}): no document "
        "has records on both sides.",
        "",
        f"Format: **{report['format']}**. Details: `{names['report']}`.",
        "",
        "## Quality control",
        "",
        f"{report['records_assessed']} records assessed, {records['kept']} kept.",
        "",
        "| filter | removed | why |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {f['removed']} | {f['why']} |" for name, f in report["filters"].items()]
    if report["pii_redacted"]:
        found = ", ".join(f"{k}: {v}" for k, v in report["pii_redacted"].items())
        lines += ["", f"Personal data redacted: {found}."]
    lines += [
        "",
        "## Metrics",
        "",
        f"- diversity_score: {metrics['diversity_score']}",
        f"- quality_score: {metrics['quality_score']}",
    ]
    if "coherence_score" in metrics:
        lines.append(f"- coherence_score: {metrics['coherence_score']}")
    if "domain_relevance" in metrics:
        lines.append(f"- domain_relevance: {metrics['domain_relevance']}")
    if coverage is not None:
        lines.append(
            f"- document coverage: {coverage['documents_with_records']} of {coverage['documents']} "
            f"documents, {coverage['chunks_with_records']} of {coverage['chunks']} chunks"
        )
    lines += [f"- length (characters): {metrics['length_chars']}", ""]
    for metric, gate in report.get("gates", {}).items():
        verdict = "passed" if gate["passed"] else "FAILED"
        lines.insert(-1, f"- gate {metric} {gate['threshold']}: {verdict} ({gate['value']})")
    if has_histogram:
        lines += [f"![Record length histogram]({names['histogram']})", ""]
    if docs["skipped"]:
        lines += ["## Skipped files", ""]
        lines += [f"- `{s['file']}`: {s['reason']}" for s in docs["skipped"]]
        lines.append("")
    if docs.get("without_records"):
        lines += ["## Documents that gave no records", ""]
        lines += [f"- `{d['file']}`: {d['why']}" for d in docs["without_records"]]
        lines.append("")
    if examples:
        lines += ["## Examples", ""]
        for example in examples:
            lines += ["```json", json.dumps(example, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)
