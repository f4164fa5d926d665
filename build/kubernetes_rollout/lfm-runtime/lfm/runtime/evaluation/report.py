"""A short Markdown report and a bar chart (PNG) of the fine-tuned model against its base.

For a hybrid method each adapter gets its own table and gates, and the chart shows every
adapter beside the base model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .results import sections

REPORT_FILE = "eval_report.md"
CHART_FILE = "eval_comparison.png"


def write_report(results: Mapping[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Write the report (and, with a base to compare against, its chart); returns the report."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    models = sections(results)
    compared = any(
        s["base"] is not None for section in models.values() for s in section["scores"].values()
    )
    chart = write_chart(models, out / CHART_FILE) if compared else None
    hybrid = None not in models
    subject = (
        f"Adapters {', '.join(f'`{name}`' for name in models)}"
        if hybrid
        else f"Model `{results['model_path']}`"
    )
    lines = [
        f"# Evaluation: {results['model_id']}",
        "",
        f"{subject}, base `{results['base_model']}`, {results['timestamp']}.",
        "",
    ]
    for dataset in results["datasets"]:
        lines.append(
            f"- data `{dataset['name']}`: {dataset['examples']} examples ({dataset['split']}), "
            f"sha256 `{dataset['sha256'][:16]}`"
        )
    for name, section in models.items():
        if name is not None:
            verdict = (
                ""
                if "passed" not in section
                else (" (passed)" if section["passed"] else " (**FAILED**)")
            )
            lines += ["", f"## Adapter `{name}`{verdict}", "", f"Model `{section['model_path']}`."]
        lines += _score_table(section["scores"], "fine-tuned" if name is None else name)
        lines += _gate_list(section.get("gates") or [], "##" if name is None else "###")
    if chart is not None:
        lines += ["", f"![fine-tuned vs base]({chart.name})"]
    path = out / REPORT_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _score_table(scores: Mapping[str, Mapping[str, Any]], label: str) -> list[str]:
    lines = ["", f"| score | {label} | base | improvement |", "| --- | ---: | ---: | ---: |"]
    for name, score in scores.items():
        base = "" if score["base"] is None else f"{score['base']:.4g}"
        gain = "" if score["gain"] is None else f"{score['gain']:+.4g}"
        arrow = "higher is better" if score["higher_is_better"] else "lower is better"
        lines.append(f"| {name} ({arrow}) | {score['value']:.4g} | {base} | {gain} |")
    return lines


def _gate_list(gates: list[Mapping[str, Any]], heading: str) -> list[str]:
    if not gates:
        return []
    lines = ["", f"{heading} Gates", ""]
    for gate in gates:
        mark = "pass" if gate["passed"] else "**FAIL**"
        lines.append(f"- {mark} `{gate['gate']}`: {gate['value']:.4g} (bound {gate['bound']:.4g})")
    return lines


def write_chart(models: Mapping[str | None, Mapping[str, Any]], path: Path) -> Path:
    """One small bar group per score (base, then each fine-tuned model): the scores have
    different scales, so each gets its own axes."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    first = next(iter(models.values()))["scores"]
    names = [n for n, s in first.items() if s["base"] is not None]
    labels = ["base", *("fine-tuned" if m is None else m for m in models)]
    colors = ["#9aa5b1", "#2b6cb0", "#dd6b20", "#38a169", "#805ad5"]
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=((2 + len(labels)) * columns, 2.6 * rows), squeeze=False
    )
    for ax, name in zip(axes.flat, names, strict=False):
        values = [first[name]["base"], *(m["scores"][name]["value"] for m in models.values())]
        bars = ax.bar(labels, values, color=[colors[i % len(colors)] for i in range(len(labels))])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        higher = first[name]["higher_is_better"]
        ax.set_title(f"{name} ({'higher' if higher else 'lower'} is better)", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
