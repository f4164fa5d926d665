"""Pass 1, load: read a YAML or JSON config into plain data plus a source map.

The source map records where each key and value was written (`file:line:col`), so later passes
can point at the exact spot. YAML goes through ruamel.yaml's round-trip loader, which keeps
positions; JSON is parsed by the json module (strict, exact numbers) and then, when it parses,
by ruamel.yaml too, only to learn positions.

A config is input from anyone: only a regular file is read, and the limits in `bounds` (size,
values with YAML aliases expanded, nesting) keep loading it linear in its size.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfm.runtime.inputs import InputRefused, read_bounded
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .bounds import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_NESTING,
    TOO_DEEP,
    ConfigTooLarge,
    bounded_yaml,
    json_nesting,
)
from .diagnostics import CompileError, Diagnostic, JsonPath, Location


@dataclass
class SourceMap:
    """Where each key and value of the loaded document was written."""

    file: str
    keys: dict[JsonPath, Location] = field(default_factory=dict)
    values: dict[JsonPath, Location] = field(default_factory=dict)

    def locate(self, path: JsonPath, *, key: bool = False) -> Location | None:
        """The nearest recorded position at or above `path` (a missing key points at its parent)."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            sub = path[:end]
            found = table.get(sub) or self.keys.get(sub)
            if found:
                return found
        return Location(self.file, 1, 1)


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    display_name: str  # how diagnostics name the file: the path as the user gave it
    data: dict[str, Any]
    source: SourceMap
    sha256: str


def load_config(path: str | Path) -> LoadedConfig:
    path = Path(path)
    name = str(path)
    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES, "a config file")
    except InputRefused as exc:  # a device, a FIFO, a folder, or far too large: never read
        raise _fail(f"{name} is {exc}") from None
    except FileNotFoundError:
        raise _fail(f"config file not found: {name}") from None
    except OSError as exc:
        raise _fail(f"cannot read {name}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        where = Location(name, raw.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1)
        raise CompileError(
            [Diagnostic("error", "the file is not UTF-8 text", (), where, "save it as UTF-8")]
        ) from None

    source = SourceMap(name)
    if not text.strip():
        raise _fail("the file is empty: expected a mapping with a `model_config` key", name)
    if path.suffix.lower() == ".json":
        data = _parse_json(text, name)
        _record_positions(_yaml_or_none(text, name), (), source)
        if json_nesting(data) > MAX_CONFIG_NESTING:  # found here when YAML could not parse it
            raise _fail(TOO_DEEP, name)
    else:
        node = _parse_yaml(text, name)
        _record_positions(node, (), source)
        data = _plain(node)
    if data is None:
        raise _fail("the file is empty: expected a mapping with a `model_config` key", name)
    if not isinstance(data, dict):
        raise _fail(
            f"the file must hold a mapping (`model_config: ...`), not a {_kind(data)}", name
        )
    bad = list(_unrepresentable(data, ()))
    if bad:
        raise CompileError([Diagnostic("error", why, p, source.locate(p)) for p, why in bad])
    return LoadedConfig(path, name, data, source, hashlib.sha256(raw).hexdigest())


def _unrepresentable(node: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    """Values no artifact can hold: lone surrogates (JSON can escape them) and inf/nan."""
    if isinstance(node, str):
        if any("\ud800" <= ch <= "\udfff" for ch in node):
            yield path, "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    elif isinstance(node, float):
        if not math.isfinite(node):
            yield path, f"{node} is not a finite number"
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _unrepresentable(key, (*path, key))
            yield from _unrepresentable(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _unrepresentable(value, (*path, index))


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return bounded_yaml().load(text)
    except ConfigTooLarge as exc:
        raise _too_large(exc, name) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name, 1, 1)
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        hint = _yaml_hint(problem)
        if "duplicate key" in problem:
            problem = _duplicate_key_message(exc)
        elif exc.context and exc.context_mark and exc.context_mark != exc.problem_mark:
            # e.g. "while parsing a flow sequence" at the '[' that was never closed
            ctx = exc.context_mark
            problem += f" ({' '.join(str(exc.context).split())} that starts at {ctx.line + 1}:{ctx.column + 1})"
        raise CompileError(
            [Diagnostic("error", f"YAML syntax error: {problem}", (), where, hint)]
        ) from None
    except YAMLError as exc:
        raise _fail(f"YAML syntax error: {exc}", name) from None


def _yaml_hint(problem: str) -> str | None:
    if "'\\t'" in problem or "\\t" in problem:
        return "indent with spaces: YAML does not allow tabs"
    if "mapping values are not allowed" in problem:
        return "check the indentation, and quote a value that contains ': '"
    return None


def _duplicate_key_message(exc: MarkedYAMLError) -> str:
    problem = str(exc.problem or "")
    # ruamel says: found duplicate key "r" with value "8" (original value: "16")
    key = problem.split('"')[1] if '"' in problem else "?"
    return f"duplicate key '{key}' (each key may appear once in a mapping)"


def _parse_json(text: str, name: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise _DuplicateKey(key)
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except RecursionError:  # the json module gives up at Python's recursion limit
        raise _fail(TOO_DEEP, name) from None
    except json.JSONDecodeError as exc:
        where, message = Location(name, exc.lineno, exc.colno), exc.msg
        comma = _trailing_comma(text, exc.pos)
        if comma is not None:
            where = _location_of(text, comma, name)
            message = "trailing comma before a closing bracket is not allowed in JSON"
        raise CompileError(
            [Diagnostic("error", f"JSON syntax error: {message}", (), where)]
        ) from None
    except _DuplicateKey as exc:
        where = _second_occurrence(text, exc.key, name)
        message = f"duplicate key '{exc.key}' (each key may appear once in an object)"
        raise CompileError([Diagnostic("error", message, (), where)]) from None


def _trailing_comma(text: str, pos: int) -> int | None:
    """Offset of the comma when a JSON error is a comma followed by `}` or `]`."""
    rest = text[pos:].lstrip()
    before = text[:pos].rstrip()
    if rest[:1] in ("}", "]") and before.endswith(","):
        return len(before) - 1
    return None


def _second_occurrence(text: str, key: str, name: str) -> Location:
    needle = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    matches = list(needle.finditer(text))
    return (
        _location_of(text, matches[1].start(), name) if len(matches) > 1 else Location(name, 1, 1)
    )


def _location_of(text: str, offset: int, name: str) -> Location:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Location(name, line, column)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _yaml_or_none(text: str, name: str) -> Any:
    try:
        return bounded_yaml().load(text)
    except ConfigTooLarge as exc:
        raise _too_large(exc, name) from None
    except YAMLError:
        return None  # valid JSON that YAML rejects (e.g. tab indentation): no positions


def _too_large(exc: ConfigTooLarge, name: str) -> CompileError:
    where = Location(name, exc.mark.line + 1, exc.mark.column + 1)
    return CompileError([Diagnostic("error", exc.message, (), where)])


def _record_positions(node: Any, path: JsonPath, source: SourceMap) -> None:
    if isinstance(node, CommentedMap):
        written = node.lc.data or {}  # None in a mapping made only of `<<: *anchor`
        for key in node:
            child = (*path, str(key))
            if key not in written:
                continue  # a key merged in from an anchor (`<<: *defaults`): it has no line of its own
            kline, kcol = node.lc.key(key)
            vline, vcol = node.lc.value(key) if node[key] is not None else (kline, kcol)
            source.keys[child] = Location(source.file, kline + 1, kcol + 1)
            source.values[child] = Location(source.file, vline + 1, vcol + 1)
            _record_positions(node[key], child, source)
    elif isinstance(node, CommentedSeq):
        for index, item in enumerate(node):
            line, col = node.lc.item(index)
            source.values[(*path, index)] = Location(source.file, line + 1, col + 1)
            _record_positions(item, (*path, index), source)


def _plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain dict/list/str/int/float/bool/None."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)  # dates and other YAML-only scalars become their text


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _fail(message: str, file: str | None = None) -> CompileError:
    location = Location(file, 1, 1) if file else None
    return CompileError([Diagnostic("error", message, (), location)])
