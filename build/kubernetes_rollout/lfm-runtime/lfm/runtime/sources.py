"""Read raw dataset records from local files or the Hugging Face Hub.

Local data is read with ``datasets``' json/csv builders, so large files stream
into Arrow instead of Python lists. Errors name the resolved file so a user can
find the problem without reading a ``datasets`` traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import links, paths
from .errors import RuntimeConfigError
from .launch import announce

if TYPE_CHECKING:
    from datasets import Dataset

    from .data import DatasetSpec

DOCUMENT_SOURCES = ("rag_documents", "documents")
SOURCE_TYPES = ("local", "hub", *DOCUMENT_SOURCES)
JSON_SUFFIXES = (".jsonl", ".json")
# One rule, as the README states it: lfm compile rebases a config's relative paths onto the
# bundle, so the path a user fixes is the one in the config, relative to the config file.
PATH_RULE = "fix the path (a relative path in a config is relative to the config file)"
SUFFIXES = (*JSON_SUFFIXES, ".csv")


class DocumentBuilder(Protocol):
    """Builds a document source's records: (train file, test file or None when no document
    could be held out). A problem the user must fix is a RuntimeConfigError.

    lfm ships one, ``lfm.dataset.bundle.build_documents``; a bundle's scripts hand it over in
    ``DatasetSpec(build_documents=...)``. The runtime, which every bundle imports, never imports
    the dataset pipeline itself: a bundle without documents does not need it installed.
    """

    def __call__(
        self,
        documents: dict[str, Any],
        *,
        source: Path,
        fmt: str,
        split_ratio: float,
        seed: int,
        tokenizer: str | None,
        cache_root: Path,
    ) -> tuple[Path, Path | None]: ...


def load_records(spec: DatasetSpec, base_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load the raw (untokenized) records ``spec`` points at; never empty."""
    if spec.source_type in DOCUMENT_SOURCES:
        return load_document_splits(spec, base_dir)[0]
    if spec.source_type == "hub":
        records, where = _load_hub(spec, base_dir), spec.path
    elif spec.source_type == "local":
        files = _local_files(paths.absolute_local(spec.path, base_dir))
        records, where = _load_files(files), str(files[0].parent if len(files) > 1 else files[0])
    else:
        raise RuntimeConfigError(
            f"dataset.source.type {spec.source_type!r} is not supported; use one of "
            f"{', '.join(SOURCE_TYPES)}"
        )
    if len(records) == 0:
        raise RuntimeConfigError(f"dataset.source.path: {where} contains no records; add data")
    return records


def load_document_splits(
    spec: DatasetSpec,
    base_dir: str | os.PathLike[str] | None = None,
    tokenizer_name: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """Build (once) and load the records generated from a document source: (train, test).

    The work is done by the spec's ``build_documents`` (see :class:`DocumentBuilder`). Test is
    None when no document could be held out (a single document, or split_ratio 0).
    """
    source = paths.absolute_local(spec.path, base_dir)  # a file that is a link stays one
    if not source.exists():
        raise RuntimeConfigError(f"dataset.source.path: {source} does not exist; {PATH_RULE}")
    if spec.build_documents is None:
        raise RuntimeConfigError(
            f"dataset.source.type {spec.source_type!r} builds the dataset from documents, but "
            "this script passes no builder (DatasetSpec(build_documents=...)); recompile the "
            "bundle with `lfm compile`, whose scripts pass lfm.dataset's"
        )
    bundle = Path(base_dir) if base_dir is not None else Path.cwd()
    train, test = spec.build_documents(
        spec.documents or {},
        source=source,
        fmt="alpaca" if spec.format == "auto" else spec.format,
        split_ratio=spec.holdout_ratio,
        seed=spec.seed,
        tokenizer=tokenizer_name,
        cache_root=bundle / ".lfm-dataset",
    )
    report = train.parent / "dataset_report.json"
    if train.stat().st_size == 0:
        raise RuntimeConfigError(
            f"dataset.source.path: no training records were generated from {source}; see "
            f"{report} for skipped files and filter counts"
        )
    return _load_files([train]), _load_files([test]) if test and test.stat().st_size else None


def _load_hub(spec: DatasetSpec, base_dir: str | os.PathLike[str] | None) -> Dataset:
    import datasets

    try:
        return datasets.load_dataset(paths.resolve(spec.path, base_dir), split=spec.split)
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as exc:
        raise RuntimeConfigError(
            f"dataset.source.path: could not load hub dataset {spec.path!r} split "
            f"{spec.split!r} ({_reason(exc)}); check the id and split, your network or "
            f"HF_HUB_OFFLINE cache, or use dataset.source.type 'local' with a file"
        ) from exc


def _local_files(path: Path) -> list[Path]:
    """The data files at ``path``: the file itself, or a directory's JSON files sorted. A link
    that leads out of the folder is never read (:mod:`lfm.runtime.links`)."""
    if not path.exists():
        raise RuntimeConfigError(f"dataset.source.path: {path} does not exist; {PATH_RULE}")
    if path.is_dir():
        listed = links.folder_files(path, lambda relative, is_dir: is_dir)  # not subfolders
        for skipped in listed.skipped:
            announce(skipped.warning())  # once, not once per training process
        files = [p for p in listed.files if p.suffix in JSON_SUFFIXES]
        if not files:
            raise RuntimeConfigError(
                f"dataset.source.path: directory {path} has no .jsonl or .json files; add data "
                f"files or point at a single file"
            )
    elif path.suffix.lower() in SUFFIXES:
        if problem := links.link_problem(path, path.parent):
            raise RuntimeConfigError(f"dataset.source.path: {path} is a {problem}")
        files = [path]
    else:
        raise RuntimeConfigError(
            f"dataset.source.path: {path} has unsupported type {path.suffix or '(none)'!r}; use "
            f"a .jsonl, .json or .csv file"
        )
    for file in files:
        if file.stat().st_size == 0:
            raise RuntimeConfigError(f"dataset.source.path: {file} is empty; add records to it")
    return files


def _load_files(files: list[Path]) -> Dataset:
    import datasets

    builder = "csv" if files[0].suffix.lower() == ".csv" else "json"
    data_files = [str(f) for f in files]
    try:
        records = datasets.load_dataset(builder, data_files=data_files, split="train")
        if builder == "json" and _is_wrapped(records):
            # A {"data": [...]} document: read the records inside the wrapper.
            records = datasets.load_dataset(
                builder, data_files=data_files, field="data", split="train"
            )
    except (datasets.exceptions.DatasetsError, ValueError, OSError) as exc:
        raise _read_error(files, exc) from exc
    return records


def _is_wrapped(records: Dataset) -> bool:
    return records.column_names == ["data"] and all(
        isinstance(row, list) for row in records["data"]
    )


def _read_error(files: list[Path], exc: Exception) -> RuntimeConfigError:
    """Point at the first unparsable JSON line when there is one, else pass the reason on."""
    for file in files:
        location = _json_error_location(file)
        if location:
            return RuntimeConfigError(
                f"dataset.source.path: {file}:{location}; fix the JSON (one object per line for "
                f".jsonl)"
            )
    where = files[0] if len(files) == 1 else files[0].parent
    if all(_holds_no_records(file) for file in files):
        return RuntimeConfigError(f"dataset.source.path: {where} contains no records; add data")
    return RuntimeConfigError(
        f"dataset.source.path: could not read {where} ({_reason(exc)}); check that every record "
        f"has the same fields and value types"
    )


def _json_error_location(file: Path) -> str | None:
    """``line N: problem`` for the first bad JSON in ``file``; None when it all parses."""
    if file.suffix.lower() not in JSON_SUFFIXES:
        return None
    text = file.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
        return None  # one JSON document (a list or {"data": [...]}) that parses
    except json.JSONDecodeError as err:
        whole = err
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not _parses(first):
        # Either a broken first line or a multi-line document: the parser knows where.
        return f"line {whole.lineno}: invalid JSON ({whole.msg})"
    for number, line in enumerate(lines, start=1):
        if line.strip() and not _parses(line):
            return f"line {number}: invalid JSON line"
    return None


def _holds_no_records(file: Path) -> bool:
    """Blank, ``[]`` or ``{"data": []}``: ``datasets`` fails on these with a cryptic error."""
    if file.suffix.lower() not in JSON_SUFFIXES:
        return False
    text = file.read_text(encoding="utf-8", errors="replace").strip()
    return not text or (_parses(text) and json.loads(text) in ([], {"data": []}))


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _reason(exc: BaseException) -> str:
    """The innermost cause's first line: ``datasets`` wraps the useful error."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
