"""`lfm dataset convert`: a dataset file rewritten in another format, atomically."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DatasetError
from .formats import convert
from .jsonl import read_records
from .publish import write_text_atomic


def convert_file(
    source: Path, output: Path, target: str, *, source_fmt: str = "auto", force: bool = False
) -> int:
    """Write ``source``'s records to ``output`` in ``target`` format (a JSON array for ``.json``,
    JSON Lines otherwise); the number of records written. Nothing is written on an error."""
    if output.exists() and not force:
        raise DatasetError(f"{output} exists; pass --force to replace it")
    if output.resolve() == source.resolve():
        raise DatasetError("write the converted file to a new path, not over its input")
    lines = [
        json.dumps(record, ensure_ascii=False, sort_keys=True)
        for record in convert(read_records(source), source_fmt, target)
    ]
    text = (
        "[\n" + ",\n".join(lines) + "\n]\n"
        if output.suffix == ".json"
        else "".join(f"{line}\n" for line in lines)
    )
    write_text_atomic(output, text)
    return len(lines)
