"""`list --filter KEY=VALUE` (and !=, >=, <=, >, <) over tags, lineage, metrics and fields."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import RegistryError
from .records import VersionRecord

_FILTER = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$")
_ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Filter:
    key: str
    op: str
    value: str

    def matches(self, record: VersionRecord) -> bool:
        found = field_value(record, self.key)
        if self.op in ("=", "!="):
            equal = found is not None and _same(found, self.value)
            return equal if self.op == "=" else not equal
        number, wanted = _number(found), _number(self.value)
        if number is None or wanted is None:
            return False
        return _ORDERED[self.op](number, wanted)


def parse_filters(texts: Iterable[str]) -> tuple[Filter, ...]:
    parsed = []
    for text in texts:
        match = _FILTER.match(text)
        if not match:
            raise RegistryError(
                f"bad filter {text!r}: write KEY=VALUE (e.g. domain=medical, method=lora, "
                "base_model=llama-2-7b) or KEY>=NUMBER for a metric"
            )
        parsed.append(Filter(*match.groups()))
    return tuple(parsed)


def field_value(record: VersionRecord, key: str) -> Any:
    """A tag, then a lineage entry, then a metric, then a field of the record itself."""
    for source in (record.tags, record.lineage, record.metrics):
        if key in source:
            return source[key]
    if key.startswith(("lineage.", "metrics.", "tags.")):
        group, rest = key.split(".", 1)
        return field_value(record, rest) if rest else None
    return getattr(record, key, None) if key in ("name", "version", "type") else None


def _same(found: Any, text: str) -> bool:
    if isinstance(found, list | tuple):
        return any(_same(item, text) for item in found)
    if isinstance(found, bool):
        return str(found).lower() == text.lower()
    number, wanted = _number(found), _number(text)
    if number is not None and wanted is not None:
        return number == wanted
    return str(found) == text


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None
