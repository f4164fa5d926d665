"""The compiler's passes, run in order: load -> normalize -> validate -> resolve -> plan -> render.

Each pass reports diagnostics; errors stop the pipeline after the pass that found them (so a
user sees every schema error at once), warnings and notes travel along to the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diagnostics import CompileError, Diagnostic, errors_in, sort_key
from .load import load_config
from .normalize import Normalized, normalize
from .plan import Plan, build_plan
from .render import render
from .resolve import Resolved, resolve
from .validate import validate
from .write import with_manifest


@dataclass(frozen=True)
class Analysis:
    """A config validated and resolved: what `lfm validate` and `lfm explain` report."""

    config_path: Path
    sha256: str
    normalized: Normalized
    resolved: Resolved
    diagnostics: tuple[Diagnostic, ...]  # warnings and notes


@dataclass(frozen=True)
class Compilation:
    analysis: Analysis
    plan: Plan
    files: dict[str, str]  # relative path -> text, MANIFEST.sha256 included


Overrides = dict[tuple[str, ...], Any]


def analyze(config_path: str | Path, overrides: Overrides | None = None) -> Analysis:
    """Load, normalize, validate and resolve. `overrides` replace model_config values by path."""
    loaded = load_config(config_path)
    normalized = normalize(loaded)
    for path, value in (overrides or {}).items():
        _set(normalized.data.setdefault("model_config", {}), path, value)
    found = [*normalized.notes, *validate(normalized.data, normalized.source)]
    _stop_on_errors(found)
    resolved = resolve(normalized.data["model_config"], normalized.source, loaded.path)
    found += resolved.diagnostics
    _stop_on_errors(found)
    return Analysis(
        loaded.path, loaded.sha256, normalized, resolved, tuple(sorted(found, key=sort_key))
    )


def compile_config(
    config_path: str | Path, bundle_dir: str | Path, overrides: Overrides | None = None
) -> Compilation:
    analysis = analyze(config_path, overrides)
    plan = build_plan(
        analysis.resolved,
        config_path=analysis.config_path,
        config_sha256=analysis.sha256,
        shape=analysis.normalized.shape,
        bundle_dir=Path(bundle_dir),
    )
    return Compilation(analysis, plan, with_manifest(render(plan)))


def _set(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _stop_on_errors(found: list[Diagnostic]) -> None:
    if errors_in(found):
        raise CompileError(sorted(found, key=sort_key))
