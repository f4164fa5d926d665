"""The compiler's passes, run in order: load -> normalize -> validate -> resolve -> plan -> render.

Each pass reports diagnostics; errors stop the pipeline after the pass that found them (so a
user sees every schema error at once), warnings and notes travel along to the end.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .diagnostics import CompileError, Diagnostic, errors_in, sort_key
from .load import SourceMap, load_config
from .normalize import Normalized, normalize
from .plan import Plan, build_plan
from .render import render
from .resolve import Decision, Resolved, resolve
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


@dataclass(frozen=True)
class Override:
    """A model_config value replaced from the command line (e.g. `lfm train --dataset`)."""

    path: tuple[str, ...]  # inside model_config
    value: Any
    reason: str  # recorded as the decision's reason, e.g. "--dataset on the command line"


def analyze(config_path: str | Path, overrides: tuple[Override, ...] = ()) -> Analysis:
    """Load, normalize, validate and resolve the config, with `overrides` applied."""
    loaded = load_config(config_path)
    normalized = normalize(loaded)
    for override in overrides:
        _set(normalized.data.setdefault("model_config", {}), override.path, override.value)
        _forget_positions(normalized.source, ("model_config", *override.path))
    found = [*normalized.notes, *validate(normalized.data, normalized.source)]
    _stop_on_errors(found)
    resolved = resolve(normalized.data["model_config"], normalized.source, loaded.path)
    resolved = _credit_overrides(resolved, overrides)
    found += resolved.diagnostics
    _stop_on_errors(found)
    return Analysis(
        loaded.path, loaded.sha256, normalized, resolved, tuple(sorted(found, key=sort_key))
    )


def compile_config(
    config_path: str | Path,
    bundle_dir: str | Path | None = None,
    overrides: tuple[Override, ...] = (),
) -> Compilation:
    """Compile into `bundle_dir` (default: build/<model name>)."""
    return compile_analysis(analyze(config_path, overrides), bundle_dir)


def default_bundle_dir(analysis: Analysis) -> Path:
    return Path("build") / analysis.resolved.config["name"]


def compile_analysis(analysis: Analysis, bundle_dir: str | Path | None = None) -> Compilation:
    bundle_dir = default_bundle_dir(analysis) if bundle_dir is None else bundle_dir
    plan = build_plan(
        analysis.resolved,
        config_path=analysis.config_path,
        config_sha256=analysis.sha256,
        shape=analysis.normalized.shape,
        bundle_dir=Path(bundle_dir),
    )
    return Compilation(analysis, plan, with_manifest(render(plan)))


def _forget_positions(source: SourceMap, prefix: tuple[str, ...]) -> None:
    """An overridden value was not written in the file: do not point diagnostics there."""
    for table in (source.keys, source.values):
        for path in [p for p in table if p[: len(prefix)] == prefix]:
            del table[path]


def _credit_overrides(resolved: Resolved, overrides: tuple[Override, ...]) -> Resolved:
    """Decisions under an overridden path came from the command line, not the file."""
    if not overrides:
        return resolved
    prefixes = {".".join(("model_config", *o.path)): o.reason for o in overrides}

    def credit(d: Decision) -> Decision:
        for prefix, reason in prefixes.items():
            if (d.path == prefix or d.path.startswith(prefix + ".")) and d.rule == "config":
                return replace(d, rule="command_line", reason=reason)
        return d

    return replace(resolved, decisions=tuple(credit(d) for d in resolved.decisions))


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
