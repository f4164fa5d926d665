"""Where a rollback goes, from an environment's history of moves (pure; both backends use it).

Each promote remembers the version it replaced; a plain rollback returns to the most recent one
still remembered. So promote 1.0, 1.1, 1.2, then rollback twice gives 1.1 then 1.0, as a stack.
A rollback to a named version (the seed's `rollback --version`) is remembered like a promote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import MovedMeanwhile, RegistryError
from .evaluation import gate_failure
from .records import Move, VersionRecord
from .references import check_env

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


@dataclass(frozen=True)
class Guard:
    """What a caller saw before asking for a rollback: where the environment pointed and
    where the rollback would go (None: not checked)."""

    current: str | None
    target: str | None

    def check(self, name: str, env: str, current: str | None, target: str | None) -> None:
        if self.current is not None and current != self.current:
            raise MovedMeanwhile(
                f"{name}@{env} now points at {current or 'no version'}, not {self.current}: "
                "it moved since the page was shown (or the form was sent twice); nothing changed"
            )
        if self.target is not None and target != self.target:
            raise MovedMeanwhile(
                f"a rollback of {name}@{env} would now go to {target or 'no version'}, not "
                f"{self.target}: its history changed since the page was shown; nothing changed"
            )


def check_known_env(env: str, environments: tuple[str, ...]) -> None:
    """A well-formed environment name that this registry is configured with."""
    check_env(env)
    if env not in environments:
        raise RegistryError(
            f"unknown environment {env!r}: this registry has {', '.join(environments)} "
            "(set `environments` in the registry config to change them)"
        )


def check_promotion_gates(
    record: VersionRecord, env: str, require_gates: bool, gated_environments: Iterable[str]
) -> None:
    """Refuse to promote a version whose evaluation gates did not all pass, where required."""
    if require_gates or env in gated_environments:
        failure = gate_failure(record.gates)
        if failure:
            raise RegistryError(
                f"cannot promote {record.name}:{record.version} to {env}: {failure}"
            )
