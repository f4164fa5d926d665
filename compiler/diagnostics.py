"""Diagnostics: what every pass reports instead of raising a traceback.

A diagnostic carries the JSON path of the offending value and, when the loader saw it, the
`file:line:col` where it was written. They are collected per pass and printed together, like a
compiler's, so a user fixes every problem in one round.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Level = Literal["error", "warning", "note"]
JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    level: Level
    message: str
    path: JsonPath = ()
    location: Location | None = None
    hint: str | None = None
    # Warnings about the machine that compiles rather than the config (e.g. a path missing
    # here) are not made errors by --strict: the bundle runs elsewhere.
    about_this_machine: bool = False

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        at = f" (at {dotted(self.path)})" if self.path else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}{self.level}: {self.message}{hint}{at}"


class CompileError(Exception):
    """Raised by a pass that found errors; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


def dotted(path: JsonPath) -> str:
    """`("model_config", "parameters", 0)` -> `model_config.parameters[0]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def errors_in(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.level == "error"]


def sort_key(d: Diagnostic) -> tuple[int, int, str]:
    if d.location is None:
        return (1 << 30, 0, d.message)
    return (d.location.line, d.location.column, d.message)
