"""The limits on a config, and the YAML loader that enforces them while it parses.

Three shapes of config cost far more than their size, so each has a limit:

- Size: pure-Python ruamel.yaml reads about 50 KB a second of short values. A config is a few
  KB.
- Aliases: ``b: [*a, *a, *a]`` names ``a`` three times without copying it, so ten lines can
  stand for a billion values, and every pass that walks the values (positions, plain data, the
  schema) would expand them; this is the "billion laughs" bomb. A key the config otherwise
  ignores (``x-...``) is parsed all the same, so the limit counts every value in the file.
- Nesting: ruamel's scanner does work proportional to the depth for every token inside flow
  collections, so ``[[[[...`` is quadratic, and the composer and every later pass recurse.

The scanner refuses deep nesting as it reads; the composer measures the finished node graph,
each distinct node once, before a single Python object is constructed from it.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scanner import RoundTripScanner

# The examples are 2-3 KB: 256 KiB is a hundred times more, and parses in a few seconds even when
# it is nothing but short values (pure-Python ruamel.yaml reads about 50 KB of those a second).
MAX_CONFIG_BYTES = 256 * 1024
# Keys and values with every alias expanded. The seed's unified config has a few hundred; the
# limit keeps each later pass (positions, plain data, schema) well under a second.
MAX_CONFIG_VALUES = 100_000
# Collections inside collections. The schema nests about six deep; 64 stays far below Python's
# recursion limit, which the parser and every later pass walk into.
MAX_CONFIG_NESTING = 64
TOO_DEEP = (
    f"nested more than {MAX_CONFIG_NESTING} levels deep (lists and mappings inside each other)"
)


class ConfigTooLarge(Exception):
    """A config over one of the limits; ``mark`` is where (0-based ``line`` and ``column``)."""

    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.message, self.mark = message, mark


def bounded_yaml() -> YAML:
    """ruamel.yaml's round-trip loader, with the limits above and duplicate keys refused."""
    yaml = YAML(typ="rt")
    yaml.Scanner = _ShallowScanner
    yaml.Composer = _MeasuringComposer
    yaml.allow_duplicate_keys = False
    return yaml


def json_nesting(value: Any) -> int:
    """How deep lists and objects nest in parsed JSON. Iterative: the point is to find data
    nested deeper than a recursive walk could follow."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending += [(child, depth + 1) for child in item]
    return deepest


class _ShallowScanner(RoundTripScanner):
    """Stops at the first collection nested past the limit, before the quadratic work."""

    def add_indent(self, column: int) -> bool:
        added = bool(super().add_indent(column))
        if added:
            self._refuse_deep_nesting()
        return added

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        super().fetch_flow_collection_start(TokenClass, to_push)
        self._refuse_deep_nesting()

    def _refuse_deep_nesting(self) -> None:
        if len(self.indents) + self.flow_level > MAX_CONFIG_NESTING:
            raise ConfigTooLarge(TOO_DEEP, self.reader.get_mark())


class _MeasuringComposer(Composer):
    def compose_document(self) -> Any:
        node = super().compose_document()
        _Expansion().measure(node)
        return node


class _Expansion:
    """Each collection's size and depth with every alias expanded, in time linear in the file:
    an alias is the node its anchor names, measured once and then looked up."""

    def __init__(self) -> None:
        self.measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth)
        self.open: set[int] = set()  # collections being measured, to catch one inside itself

    def measure(self, node: Node) -> tuple[int, int]:
        if not isinstance(node, MappingNode | SequenceNode):
            return 1, 0
        key = id(node)
        if key in self.measured:
            return self.measured[key]
        if key in self.open:
            raise ConfigTooLarge(
                f"the anchor &{node.anchor} is used inside itself, so it never ends",
                node.start_mark,
            )
        self.open.add(key)
        values, depth = 1, 0
        for child in _children(node):
            child_values, child_depth = self.measure(child)
            values, depth = values + child_values, max(depth, child_depth)
        self.open.discard(key)
        depth += 1
        if values > MAX_CONFIG_VALUES:
            raise ConfigTooLarge(
                f"more than {MAX_CONFIG_VALUES} keys and values here once YAML aliases are "
                "expanded (an anchor used many times inside others grows exponentially)",
                node.start_mark,
            )
        if depth > MAX_CONFIG_NESTING:
            raise ConfigTooLarge(f"{TOO_DEEP}, counting what aliases expand to", node.start_mark)
        self.measured[key] = values, depth
        return values, depth


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)
