"""Find the documents under the sources a user names, in a stable order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError


@dataclass(frozen=True)
class SourceFile:
    path: Path  # where to read it
    name: str  # how reports and metadata call it: relative to its source root, POSIX


def discover(sources: Iterable[str | Path]) -> list[SourceFile]:
    """Every file under each source (a file or a folder tree), sorted; hidden files skipped.

    A source that does not exist is an error: a typo must not produce an empty dataset.
    """
    found: list[SourceFile] = []
    for source in sources:
        root = Path(source)
        if not root.exists():
            raise DatasetError(f"source {str(source)!r} does not exist; check the path")
        if root.is_file():
            found.append(SourceFile(root, root.name))
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                found.append(SourceFile(path, relative.as_posix()))
    if not found:
        named = ", ".join(str(s) for s in sources) or "(none)"
        raise DatasetError(f"source {named} holds no files; add documents")
    return found
