"""`lfm dataset convert`: a dataset file rewritten in another format, atomically."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from .errors import DatasetError
from .feedback import PREFERENCE_FORMATS, convert_preference, detect_preference
from .formats import convert, detect
from .jsonl import read_records
from .publish import write_chunks_atomic


@dataclass(frozen=True)
class Converted:
    written: int  # records written
    duplicates: int  # records left out: the same as one already written, once converted


def convert_file(
    source: Path,
    output: Path,
    target: str,
    *,
    source_fmt: str = "auto",
    force: bool = False,
    keep_duplicates: bool = False,
) -> Converted:
    """Write ``source``'s records to ``output`` in ``target`` format (a JSON array for ``.json``,
    JSON Lines otherwise), each distinct record once (as from-feedback writes them: a repeated
    example only weighs more in training) unless ``keep_duplicates`` (a repeat meant to weigh
    more). Nothing is written on an error."""
    if output.exists() and not force:
        raise DatasetError(f"{output} exists; pass --force to replace it")
    if output.resolve() == source.resolve():
        raise DatasetError("write the converted file to a new path, not over its input")
    written = duplicates = 0
    # Digests, not the records: a large input stays streamed.
    seen: set[bytes] = set()

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
        nonlocal written, duplicates
        for record in converted():
            line = json.dumps(record, ensure_ascii=False, sort_keys=True)
            digest = hashlib.sha256(line.encode("utf-8")).digest()
            if digest in seen and not keep_duplicates:
                duplicates += 1
                continue
            seen.add(digest)
            written += 1
            yield line

    if output.suffix == ".json":
        write_chunks_atomic(output, _json_array(lines()))
    else:
        write_chunks_atomic(output, (f"{line}\n" for line in lines()))
    return Converted(written, duplicates)


def _json_array(lines: Iterable[str]) -> Iterator[str]:
    yield "[\n"
    for index, line in enumerate(lines):
        yield f",\n{line}" if index else line
    yield "\n]\n"
