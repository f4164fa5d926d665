"""An on-disk cache of model replies keyed by the request, so a rerun does not pay twice."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


class ReplyCache:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        """sha256 of the canonical request (endpoint, model, prompt, sampling): never the key."""
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        if self.directory is None:
            return None
        path = self.directory / key[:2] / f"{key}.json"
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["reply"])
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, reply: str) -> None:
        if self.directory is None:
            return
        folder = self.directory / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent reader sees the whole entry or none.
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"reply": reply}, handle)
        os.replace(tmp, folder / f"{key}.json")
