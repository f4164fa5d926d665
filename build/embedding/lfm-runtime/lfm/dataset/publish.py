"""Atomic output: everything is written into a staging folder, then moved into place.

Two layouts:
- a folder (``--output datasets/docs_qa``): ``train.jsonl``, ``test.jsonl`` (with a split),
  ``dataset_report.json``, ``README.md`` (the dataset card) and ``length_histogram.png``; the
  folder is swapped in whole with renames;
- a file (``--output datasets/docs_qa.jsonl`` or ``.json``): the training records at that path,
  and beside it ``docs_qa.test.jsonl``, ``docs_qa.report.json``, ``docs_qa.README.md`` and
  ``docs_qa.lengths.png``; each file is replaced with one rename.
An interrupted run leaves the previous output as it was; existing output is replaced only with
``force``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import DatasetError

FILE_SUFFIXES = (".jsonl", ".json")
DIR_NAMES = {
    "train": "train.jsonl",
    "test": "test.jsonl",
    "report": "dataset_report.json",
    "card": "README.md",
    "histogram": "length_histogram.png",
}


def layout(output: Path) -> dict[str, Path]:
    """Final path of each output, by role."""
    if output.suffix.lower() in FILE_SUFFIXES:
        stem = output.with_suffix("")
        return {
            "train": output,
            "test": stem.with_name(f"{stem.name}.test{output.suffix.lower()}"),
            "report": stem.with_name(f"{stem.name}.report.json"),
            "card": stem.with_name(f"{stem.name}.README.md"),
            "histogram": stem.with_name(f"{stem.name}.lengths.png"),
        }
    return {role: output / name for role, name in DIR_NAMES.items()}


class Staging:
    """A temporary folder beside the output; :meth:`publish` moves its files into place."""

    def __init__(self, output: Path, *, force: bool) -> None:
        self.output = Path(os.path.abspath(output))
        self.targets = layout(self.output)
        self.is_dir = self.output.suffix.lower() not in FILE_SUFFIXES
        existing = [p for p in (self.output, *self.targets.values()) if p.exists()]
        if existing and not force:
            raise DatasetError(f"{existing[0]} exists; pass --force to replace it")
        if self.is_dir and self.output.is_file():
            raise DatasetError(f"{output} is a file; name a folder or a .jsonl file")
        if (
            self.is_dir
            and self.output.is_dir()
            and not (self.output / DIR_NAMES["report"]).exists()
        ):
            # --force replaces a dataset this command wrote, never some other folder.
            raise DatasetError(
                f"{output} is a folder that lfm did not write (no {DIR_NAMES['report']}); "
                f"choose another --output"
            )
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.", dir=self.output.parent))

    def path(self, role: str) -> Path:
        return self.dir / self.targets[role].name

    def publish(self) -> dict[str, Path]:
        """Move the staged files into place; returns the paths written."""
        written = {role: t for role, t in self.targets.items() if self.path(role).exists()}
        if self.is_dir:
            retired = self.output.with_name(f".{self.output.name}.old")
            if self.output.exists():
                shutil.rmtree(retired, ignore_errors=True)
                os.rename(self.output, retired)
            os.rename(self.dir, self.output)
            shutil.rmtree(retired, ignore_errors=True)
            return written
        for role in self.targets:
            stale = self.targets[role]
            if role in written:
                os.replace(self.path(role), stale)
            elif stale.exists():  # e.g. a test split from an earlier run with split_ratio > 0
                stale.unlink()
        shutil.rmtree(self.dir, ignore_errors=True)
        return written

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """One file written aside and renamed into place: a reader never sees half of it."""
    write_chunks_atomic(path, [text])


def write_chunks_atomic(path: Path, chunks: Iterable[str]) -> None:
    """:func:`write_text_atomic` for text that comes in pieces: each is written as it comes, so
    the whole text is never held in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
