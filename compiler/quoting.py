"""Quoting filters: the only way a value reaches an artifact.

Each filter turns a value into a literal of one target language, so that no config string can
change the structure of what we emit (close a string, start a new line, run code). Filters
return `Quoted`; the renderer's `finalize` hook rejects anything else, so a template that forgets
a filter fails loudly instead of emitting raw text.
"""

from __future__ import annotations

import json
import re
from typing import Any


class Quoted(str):
    """Text that a quoting filter produced and that may be placed into an artifact as is."""


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+)?$"
)


def python_literal(value: Any) -> Quoted:
    """A Python expression that evaluates to `value` (str, int, float, bool, None, list, dict)."""
    return Quoted(_py(value))


def _py(value: Any) -> str:
    from .methods.base import Code  # lfm's own expressions, e.g. `tokenizer.name_or_path`

    if isinstance(value, Code):
        return str(value)
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot emit non-finite float {value!r}")
        return repr(value)
    if isinstance(value, str):
        return double_quoted(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(str(k))}: {_py(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot emit {type(value).__name__} as a Python literal")


_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def double_quoted(text: str) -> str:
    """A double-quoted string literal that Python and YAML both read back as `text`.

    Printable characters stay readable; everything else (control, format and separator
    characters, lone surrogates) becomes a \\x, \\u or \\U escape, which both languages share.
    """
    out = []
    for ch in text:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def python_text(value: Any) -> Quoted:
    """Text safe inside a Python comment or a triple-quoted docstring: one line, no quotes."""
    inner = repr(str(value))[1:-1]
    return Quoted(inner.replace('"', '\\"'))


def identifier(value: Any) -> Quoted:
    """A Python identifier (a keyword argument or class name chosen by lfm, never by a user)."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise ValueError(f"not an identifier: {value!r}")
    return Quoted(value)


def yaml_scalar(value: Any) -> Quoted:
    """A YAML flow scalar or collection; strings are always double-quoted (so `NO` stays a string)."""
    return Quoted(_yaml(value))


def _yaml(value: Any) -> str:
    if isinstance(value, str):
        return double_quoted(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{double_quoted(str(k))}: {_yaml(v)}" for k, v in value.items()) + "}"
        )
    return json.dumps(value, allow_nan=False)  # numbers, true/false, null: JSON spelling is YAML


def json_value(value: Any) -> Quoted:
    """A JSON value on one line (also a Dockerfile exec-form array or a quoted ENV value)."""
    return Quoted(json.dumps(value, allow_nan=False))  # ASCII: no character can split a line


def json_document(value: Any) -> Quoted:
    """A whole JSON file's text, indented for review."""
    return Quoted(json.dumps(value, allow_nan=False, indent=2))


def markdown_code(value: Any) -> Quoted:
    """Inline code in Markdown: one line, and no backtick can end the span early."""
    text = " ".join(str(value).split()).replace("`", "'")
    return Quoted(f"`{text}`")


def requirement(value: Any) -> Quoted:
    if not isinstance(value, str) or not _REQUIREMENT.match(value):
        raise ValueError(f"not a pinned requirement: {value!r}")
    return Quoted(value)


FILTERS = {
    "py": python_literal,
    "pytext": python_text,
    "comment": python_text,
    "ident": identifier,
    "yaml": yaml_scalar,
    "md": markdown_code,
    "json": json_value,
    "jsondoc": json_document,
    "req": requirement,
}
