"""Stream records into a .jsonl file or a .json array."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any


class RecordWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.array = path.suffix.lower() == ".json"
        self.count = 0
        self._handle = path.open("w", encoding="utf-8")
        if self.array:
            self._handle.write("[\n")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True)
        if self.array and self.count:
            self._handle.write(",\n")
        self._handle.write(line if self.array else line + "\n")
        self.count += 1

    def close(self) -> None:
        if self.array:
            self._handle.write("\n]\n" if self.count else "]\n")
        self._handle.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
