"""Find the documents under the sources a user names, in a stable order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from lfm.runtime import links

from .errors import DatasetError


@dataclass(frozen=True)
class SourceFile:
    path: Path  # where to read it
    name: str  # how reports and metadata call it: relative to its source root, POSIX
    skipped: str | None = None  # why it is never opened (a link lfm does not follow)


def discover(sources: Iterable[str | Path]) -> list[SourceFile]:
    """Every file under each source (a file or a folder tree), sorted; hidden files skipped.

    A link is read only when it leads to a file inside the folder given (for a file named on
    its own, the folder holding it); any other is listed with ``skipped`` set, never read
    (:mod:`lfm.runtime.links`). A source that does not exist is an error: a typo must not
    produce an empty dataset.
    """
    found: list[SourceFile] = []
    for source in sources:
        root = Path(source)
        if not root.exists():
            raise DatasetError(f"source {str(source)!r} does not exist; check the path")
        if root.is_file():
            found.append(SourceFile(root, root.name, links.link_problem(root, root.parent)))
            continue
        try:
            listed = links.folder_files(root, _hidden)
        except OSError as exc:
            raise DatasetError(f"cannot read {str(source)!r}: {exc.strerror or exc}") from None
        read = [SourceFile(path, _name(path, root)) for path in listed.files]
        skipped = [SourceFile(s.path, _name(s.path, root), s.reason) for s in listed.skipped]
        found += sorted(read + skipped, key=lambda file: file.path)
    if not found:
        named = ", ".join(str(s) for s in sources) or "(none)"
        raise DatasetError(f"source {named} holds no files; add documents")
    return found


def skipped_links(files: Iterable[SourceFile]) -> list[links.SkippedLink]:
    return [links.SkippedLink(f.path, f.skipped) for f in files if f.skipped is not None]


def _hidden(relative: PurePath, is_dir: bool) -> bool:
    return relative.name.startswith(".")


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
