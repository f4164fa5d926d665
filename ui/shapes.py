"""Values for a page, taken out of a JSON file whose shape nobody promised.

A page's template sees only what these return: a mapping is a dict, a list is a list, a shown
value is a string or a number. What does not have the expected shape is named in ``problems``
(the page shows them), never raised: one odd file must not turn a page into an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Shape:
    """Reads fields of one file, collecting the ones of the wrong type as problems."""

    file: str
    problems: list[str] = field(default_factory=list)

    def mapping(self, parent: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._wrong(where + key, "an object", value)
            return {}
        return value

    def items(self, parent: dict[str, Any], key: str, where: str = "") -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self._wrong(where + key, "a list", value)
            return []
        return value

    def _wrong(self, path: str, wanted: str, value: Any) -> None:
        self.problems.append(f"{self.file}: `{path}` should be {wanted}, not {kind(value)}")


def kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), "null" if value is None else type(value).__name__)


def scalar(value: Any) -> str | int | float | bool | None:
    """A value fit for a table cell: a number or text as it is; anything nested as short text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


def text(value: Any) -> str:
    """A value as text ("" for null)."""
    found = scalar(value)
    return "" if found is None else str(found)
