"""Read and write JSON Lines (and JSON arrays) of records."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any

from lfm.runtime.inputs import InputRefused, TooLarge, open_regular, read_bounded, size_text

from .errors import DatasetError
from .limits import MAX_JSON_DATASET_BYTES, MAX_JSONL_LINE_BYTES


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a .jsonl file (streamed, a line at a time) or a .json list / {"data": [...]}."""
    if path.suffix.lower() == ".json":
        data = _whole_json(path)
        if isinstance(data, dict):
            data = data.get("data")
        if not isinstance(data, list):
            raise DatasetError(f'{path}: expected a list of records or {{"data": [...]}}')
        yield from _objects(data, path)
        return
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}:{number}: invalid JSON line ({err.msg})") from None
        yield from _objects([record], path, number)


def _whole_json(path: Path) -> Any:
    try:
        with _refusals_as_errors(path):
            raw = read_bounded(path, MAX_JSON_DATASET_BYTES, "a JSON dataset")
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not valid JSON ({err})") from None
    except RecursionError:  # the json module gives up at Python's recursion limit
        raise DatasetError(f"{path}: not valid JSON (nested too deeply)") from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines, each at most MAX_JSONL_LINE_BYTES: a file with no newline is never read
    whole into memory."""
    with _refusals_as_errors(path):
        raw = open_regular(path, "a JSON Lines file")
    with io.TextIOWrapper(raw, encoding="utf-8") as handle:
        read_line = partial(handle.readline, MAX_JSONL_LINE_BYTES + 1)
        for number, line in enumerate(iter(read_line, ""), start=1):
            if len(line) > MAX_JSONL_LINE_BYTES:
                raise DatasetError(
                    f"{path}:{number}: a line longer than {size_text(MAX_JSONL_LINE_BYTES)}; "
                    "JSON Lines hold one record per line"
                )
            yield number, line


@contextmanager
def _refusals_as_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist or is not a file") from None
    except TooLarge as err:
        raise DatasetError(f"{path} is {err}; convert it to JSON Lines (.jsonl)") from None
    except InputRefused as err:
        raise DatasetError(f"{path} is {err}") from None


def _objects(items: Iterable[Any], path: Path, line: int | None = None) -> Iterator[dict]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"{path}:{line}" if line else f"{path} record {index + 1}"
            raise DatasetError(f"{where}: a record must be a JSON object")
        yield item


def write_record(handle: IO[str], record: dict[str, Any]) -> None:
    handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
