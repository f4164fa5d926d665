"""`lfm dataset convert`: a dataset file rewritten in another format, atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

from .errors import DatasetError
from .feedback import PREFERENCE_FORMATS, convert_preference, detect_preference
from .formats import convert, detect
from .jsonl import read_records
from .publish import write_chunks_atomic


def convert_file(
    source: Path, output: Path, target: str, *, source_fmt: str = "auto", force: bool = False
) -> int:
    """Write ``source``'s records to ``output`` in ``target`` format (a JSON array for ``.json``,
    JSON Lines otherwise); the number of records written. Nothing is written on an error."""
    if output.exists() and not force:
        raise DatasetError(f"{output} exists; pass --force to replace it")
    if output.resolve() == source.resolve():
        raise DatasetError("write the converted file to a new path, not over its input")
    written = 0

    def converted() -> Iterator[dict]:
        records = read_records(source)
        first = next(records, None)
        if first is None:
            return
        found = detect_preference(first) if source_fmt == "auto" else source_fmt
        whole = chain([first], records)
        if found in PREFERENCE_FORMATS or target in PREFERENCE_FORMATS:
            yield from convert_preference(whole, found or detect(first), target)
        else:
            yield from convert(whole, source_fmt, target)

    def lines() -> Iterator[str]:  # streamed: a large JSON Lines input is never held whole
        nonlocal written
        for record in converted():
            written += 1
            yield json.dumps(record, ensure_ascii=False, sort_keys=True)

    if output.suffix == ".json":
        write_chunks_atomic(output, _json_array(lines()))
    else:
        write_chunks_atomic(output, (f"{line}\n" for line in lines()))
    return written


def _json_array(lines: Iterable[str]) -> Iterator[str]:
    yield "[\n"
    for index, line in enumerate(lines):
        yield f",\n{line}" if index else line
    yield "\n]\n"
