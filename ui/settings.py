"""What one `lfm ui` serves: which registry, which folders, which server, which keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .auth import Keys


@dataclass(frozen=True)
class Settings:
    keys: Keys
    runs: Path  # searched for training outputs and eval_results.json
    datasets: Path  # searched for dataset reports
    registry: str | None = None  # as `lfm list --registry/--backend/--uri`
    backend: str | None = None
    uri: str | None = None
    serve_url: str | None = None  # a running `lfm serve`, for the Serving page
    serve_key: str | None = None  # its read key, when it has keys
    # The scheme://host[:port] browsers use, when a proxy in front rewrites Host: the Origin
    # of a form post is checked against it (and the cookie is Secure when it is https).
    public_origin: str | None = None
