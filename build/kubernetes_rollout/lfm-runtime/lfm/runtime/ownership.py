"""What lfm may replace: only files it wrote itself, proven by their content.

Every folder lfm writes whole (a bundle, a merged model, a deployment) gets a MANIFEST.sha256:
one ``<sha256>  <relative path>`` line per file. A file is lfm's when the manifest lists it and
its bytes still hash to the listed value; a file added, edited or listed by hand is not, so
``--force`` never removes it. Where an output may go is checked too: never the current
directory or a folder holding it, never the input itself or a folder holding the input, and
never a symbolic link (whose target lies elsewhere).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "MANIFEST.sha256"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_under(folder: Path) -> list[str]:
    """Every entry below ``folder`` that holds something: files, links (to files or folders,
    never followed) and empty folders (``name/``), as sorted relative POSIX paths."""
    found = []

    def fail(error: OSError) -> None:
        raise error  # an unreadable folder: say so, rather than skip what it holds

    for root, dirs, names in os.walk(folder, onerror=fail):
        here = Path(root)
        for name in dirs:
            if (here / name).is_symlink():
                found.append((here / name).relative_to(folder).as_posix())
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink())
        for name in names:
            found.append((here / name).relative_to(folder).as_posix())
        if here != folder and not dirs and not names:
            found.append(here.relative_to(folder).as_posix() + "/")
    return sorted(found)


def manifest_text(folder: Path) -> str:
    """The manifest of every file now in ``folder`` (itself excluded)."""
    lines = [
        f"{sha256_file(folder / rel)}  {rel}"
        for rel in files_under(folder)
        if rel != MANIFEST and (folder / rel).is_file() and not (folder / rel).is_symlink()
    ]
    return "".join(f"{line}\n" for line in lines)


def write_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_text(manifest_text(folder), encoding="utf-8")


def listed(folder: Path) -> dict[str, str]:
    """Relative path -> sha256, as the folder's manifest lists them (paths inside it only)."""
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    entries = {}
    for line in text.splitlines():
        digest, sep, rel = line.partition("  ")
        parts = rel.split("/")
        if sep and rel and not rel.startswith("/") and ".." not in parts and "\\" not in rel:
            entries[rel] = digest
    return entries


def proven(folder: Path) -> set[str]:
    """The files in ``folder`` that are lfm's: listed, a plain file, and unchanged."""
    found = set()
    for rel, digest in listed(folder).items():
        path = folder / rel
        try:
            if path.is_file() and not path.is_symlink() and sha256_file(path) == digest:
                found.add(rel)
        except OSError:
            continue  # unreadable: not shown to be lfm's
    return found | ({MANIFEST} if (folder / MANIFEST).is_file() else set())


def not_ours(folder: Path) -> list[str]:
    """What in ``folder`` lfm cannot show it wrote: what replacing the folder would destroy."""
    ours = proven(folder)
    return [rel for rel in files_under(folder) if rel not in ours]


def placement_problem(
    output: Path, inputs: Iterable[Path] = (), *, copied: Iterable[Path] = ()
) -> str | None:
    """Why ``output`` cannot be written or replaced at all, whatever --force says; None if it
    can. ``copied`` are inputs copied whole into the output: it must not lie inside them."""
    if output.is_symlink():
        return f"{output} is a symbolic link; give the directory it points to, or a new one"
    target = output.resolve()
    if Path.cwd().resolve().is_relative_to(target):
        return f"{output} is the current directory or holds it; choose a new folder"
    for given in inputs:
        if given.resolve().is_relative_to(target):
            return f"{output} is {given} or holds it; write the output to another folder"
    for given in copied:
        if target.is_relative_to(given.resolve()):
            return f"{output} is inside {given}, which it copies; write it to another folder"
    return None


def replace_problem(output: Path, *, force: bool) -> str | None:
    """Why an existing ``output`` may not be replaced; None when it may (or does not exist)."""
    if not output.exists():
        return None
    if not output.is_dir():
        return f"{output} is a file; choose a directory"
    if not any(output.iterdir()):
        return None
    if not force:
        return f"{output} is not empty; pass --force to replace what lfm wrote there"
    try:
        foreign = not_ours(output)
    except OSError as exc:
        return f"{output} cannot be read whole ({exc.strerror or exc}); lfm will not replace it"
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        return (
            f"{output} holds files lfm did not write ({shown}); --force replaces only lfm's own "
            "output: move them, or choose another folder"
        )
    return None
