"""Where a rollback goes, from an environment's history of moves (pure; both backends use it).

Each promote remembers the version it replaced; a plain rollback returns to the most recent one
still remembered. So promote 1.0, 1.1, 1.2, then rollback twice gives 1.1 then 1.0, as a stack.
A rollback to a named version (the seed's `rollback --version`) is remembered like a promote.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import Move

DEFAULT_ENVIRONMENTS = ("dev", "staging", "production")
PROMOTE, ROLLBACK, ROLLBACK_TO = "promote", "rollback", "rollback-to"


def rollback_target(moves: Iterable[Move]) -> str | None:
    """The version a plain rollback returns to, or None when there is none before."""
    stack: list[str] = []
    for move in moves:
        if move.action == ROLLBACK:
            if stack:
                stack.pop()
        elif move.from_version:  # the environment's first version replaced nothing
            stack.append(move.from_version)
    return stack[-1] if stack else None
