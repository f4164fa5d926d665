"""`lfm explain`: every resolved value, where it came from, and why."""

from __future__ import annotations

import dataclasses
import json

from rich.console import Console
from rich.table import Table

from .pipeline import Analysis

_STYLE = {"config": "green", "default": "dim"}


def _is_tty() -> bool:
    import sys

    return sys.stdout.isatty()


def print_explanation(analysis: Analysis, *, as_json: bool = False) -> None:
    decisions = analysis.resolved.decisions
    if as_json:
        payload = {
            "config": str(analysis.config_path),
            "shape": analysis.normalized.shape,
            "decisions": [dataclasses.asdict(d) for d in decisions],
            "diagnostics": [d.format() for d in analysis.diagnostics],
        }
        print(json.dumps(payload, indent=2, sort_keys=True))
        return
    # Piped output gets a wide table rather than rich's 80-column default.
    console = Console(highlight=False, soft_wrap=False, width=None if _is_tty() else 160)
    if analysis.normalized.shape != "model_config":
        console.print(
            f"[bold]{analysis.config_path}[/]: the `{analysis.normalized.shape}` shape "
            "was normalized into `model_config`."
        )
    table = Table(title=f"{analysis.config_path}: resolved values", show_lines=False)
    table.add_column("key", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_column("from", no_wrap=True)
    table.add_column("why", overflow="fold")
    for d in decisions:
        style = _STYLE.get(d.rule, "cyan")
        key = d.path.removeprefix("model_config.")
        table.add_row(key, json.dumps(d.value), f"[{style}]{d.rule}[/]", d.reason)
    console.print(table)
    _print_memory(console, analysis.resolved.derived, analysis.resolved.config)
    for diagnostic in analysis.diagnostics:
        console.print(diagnostic.format(), markup=False)


def _print_memory(console: Console, derived: dict, config: dict) -> None:
    """The estimate's alternatives: the same run with each method, in GiB per GPU."""
    by_method = derived.get("memory_by_method_gib")
    if not by_method:
        return
    chosen = config["fine_tuning"]["method"]
    table = Table(title="estimated peak memory per GPU (same run, each method)")
    table.add_column("method")
    table.add_column("GiB", justify="right")
    for method, gib in sorted(by_method.items(), key=lambda item: item[1]):
        mark = " (chosen)" if method == chosen else ""
        table.add_row(f"{method}{mark}", f"{gib:.1f}")
    console.print(table)
