"""Read and write JSON Lines (and JSON arrays) of records."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DatasetError


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a .jsonl file (streamed) or a .json list / {"data": [...]}."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist or is not a file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetError(f"{path}: not valid JSON ({err})") from None
        if isinstance(data, dict):
            data = data.get("data")
        if not isinstance(data, list):
            raise DatasetError(f'{path}: expected a list of records or {{"data": [...]}}')
        yield from _objects(data, path)
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}:{number}: invalid JSON line ({err.msg})") from None
            yield from _objects([record], path, number)


def _objects(items: Iterable[Any], path: Path, line: int | None = None) -> Iterator[dict]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"{path}:{line}" if line else f"{path} record {index}"
            raise DatasetError(f"{where}: a record must be a JSON object")
        yield item


def write_record(handle: IO[str], record: dict[str, Any]) -> None:
    handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
