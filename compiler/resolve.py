"""Pass 4, resolve: fill every default and apply every rule, recording why each value is what it is.

Values come from three places, in this order:
1. the config file (reason: where it was written),
2. the schema's `default` (reason: the field's own description says what it does),
3. a rule in `rules/` (reason: the rule's own explanation), which may only fill values the
   config left unset or set to `auto`.
The result is a complete model_config and one Decision per leaf value, which `lfm explain`
prints and the lock file records.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, JsonPath, dotted
from .load import SourceMap
from .schema import model_config_schema

ROOT = ("model_config",)


@dataclass(frozen=True)
class Decision:
    path: str  # dotted, e.g. model_config.fine_tuning.parameters.r
    value: Any
    rule: str  # "config", "default" or the name of the rule that chose it
    reason: str


@dataclass
class Context:
    """What a rule sees: the config being resolved, with helpers to read and set values."""

    config: dict[str, Any]  # model_config, being filled in
    user: dict[str, Any]  # model_config as written (after normalization)
    config_path: Path
    derived: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: SourceMap | None = None

    def get(self, *path: str) -> Any:
        node: Any = self.config
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def user_set(self, *path: str) -> bool:
        node: Any = self.user
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def decide(self, path: tuple[str, ...], value: Any, rule: str, reason: str) -> None:
        node = self.config
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        key = dotted((*ROOT, *path))
        self.decisions[key] = Decision(key, value, rule, reason)

    def withhold(self, path: tuple[str, ...], shown: str, rule: str, reason: str) -> None:
        """Take a secret the user wrote out of the resolved config (and so out of every file
        written from it); its decision shows ``shown`` (where the run finds it) instead."""
        parent = self.get(*path[:-1])
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
        key = dotted((*ROOT, *path))
        self.decisions[key] = Decision(key, shown, rule, reason)

    def derive(self, name: str, value: Any, rule: str, reason: str) -> None:
        """Record a value computed from the config (not a config field), e.g. the eval schedule."""
        self.derived[name] = value
        key = f"derived.{name}"
        self.decisions[key] = Decision(key, value, rule, reason)

    @property
    def config_dir(self) -> Path:
        return self.config_path.parent

    def warn(
        self,
        path: tuple[str, ...],
        message: str,
        hint: str | None = None,
        *,
        about_this_machine: bool = False,
    ) -> None:
        full = (*ROOT, *path)
        where = self.source.locate(full) if self.source else None
        self.diagnostics.append(
            Diagnostic("warning", message, full, where, hint, about_this_machine)
        )

    def error(self, path: tuple[str, ...], message: str, hint: str | None = None) -> None:
        full = (*ROOT, *path)
        where = self.source.locate(full) if self.source else None
        self.diagnostics.append(Diagnostic("error", message, full, where, hint))


@dataclass(frozen=True)
class Resolved:
    config: dict[str, Any]  # the complete model_config
    derived: dict[str, Any]  # values computed from it (see Context.derive)
    decisions: tuple[Decision, ...]  # sorted by path
    diagnostics: tuple[Diagnostic, ...]


def resolve(model_config: dict[str, Any], source: SourceMap, config_path: Path) -> Resolved:
    from .rules import RULES  # rules import this module's Context

    ctx = Context(copy.deepcopy(model_config), model_config, config_path, source=source)
    _record_config_and_defaults(ctx, model_config_schema(), (), source)
    for rule in RULES:
        rule(ctx)
    decisions = tuple(sorted(ctx.decisions.values(), key=lambda d: d.path))
    return Resolved(ctx.config, dict(ctx.derived), decisions, tuple(ctx.diagnostics))


def _record_config_and_defaults(
    ctx: Context, schema: dict[str, Any], path: tuple[str, ...], source: SourceMap
) -> None:
    for name, prop in schema.get("properties", {}).items():
        sub = (*path, name)
        if prop.get("type") == "object" and "properties" in prop:
            present = ctx.user_set(*sub)
            if present and not isinstance(ctx.get(*sub), dict):
                continue  # validation already reported it
            _record_config_and_defaults(ctx, prop, sub, source)
            continue
        if ctx.user_set(*sub):
            reason = _written_at(source, (*ROOT, *sub), ctx.config_path.name)
            ctx.decisions[dotted((*ROOT, *sub))] = Decision(
                dotted((*ROOT, *sub)), ctx.get(*sub), "config", reason
            )
        elif "default" in prop:
            ctx.decide(
                sub,
                copy.deepcopy(prop["default"]),
                "default",
                _first_sentence(prop.get("description", "")),
            )


def _written_at(source: SourceMap, path: JsonPath, file_name: str) -> str:
    # Name the file without its directory: the lock file must not depend on where lfm ran.
    where = source.values.get(path) or source.keys.get(path)
    return f"set in {file_name}:{where.line}:{where.column}" if where else f"set in {file_name}"


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].rstrip(".")
    return f"schema default ({head})" if head else "schema default"
