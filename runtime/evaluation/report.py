"""A short Markdown report and a bar chart (PNG) of the fine-tuned model against its base."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPORT_FILE = "eval_report.md"
CHART_FILE = "eval_comparison.png"


def write_report(results: Mapping[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Write the report (and, with a base to compare against, its chart); returns the report."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    scores = results["scores"]
    compared = any(s["base"] is not None for s in scores.values())
    chart = write_chart(scores, out / CHART_FILE) if compared and scores else None
    lines = [
        f"# Evaluation: {results['model_id']}",
        "",
        f"Model `{results['model_path']}`, base `{results['base_model']}`, {results['timestamp']}.",
        "",
    ]
    for dataset in results["datasets"]:
        lines.append(
            f"- data `{dataset['name']}`: {dataset['examples']} examples ({dataset['split']}), "
            f"sha256 `{dataset['sha256'][:16]}`"
        )
    lines += ["", "| score | fine-tuned | base | improvement |", "| --- | ---: | ---: | ---: |"]
    for name, score in scores.items():
        base = "" if score["base"] is None else f"{score['base']:.4g}"
        gain = "" if score["gain"] is None else f"{score['gain']:+.4g}"
        arrow = "higher is better" if score["higher_is_better"] else "lower is better"
        lines.append(f"| {name} ({arrow}) | {score['value']:.4g} | {base} | {gain} |")
    if results.get("gates"):
        lines += ["", "## Gates", ""]
        for gate in results["gates"]:
            mark = "pass" if gate["passed"] else "**FAIL**"
            lines.append(
                f"- {mark} `{gate['gate']}`: {gate['value']:.4g} (bound {gate['bound']:.4g})"
            )
    if chart is not None:
        lines += ["", f"![fine-tuned vs base]({chart.name})"]
    path = out / REPORT_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_chart(scores: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """One small bar pair (base, fine-tuned) per score: the scores have different scales."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt

    names = [n for n, s in scores.items() if s["base"] is not None]
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        score = scores[name]
        bars = ax.bar(
            ["base", "fine-tuned"], [score["base"], score["value"]], color=["#9aa5b1", "#2b6cb0"]
        )
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(
            f"{name} ({'higher' if score['higher_is_better'] else 'lower'} is better)", fontsize=9
        )
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
