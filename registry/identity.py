"""Who and when, for the audit log and the history of moves."""

from __future__ import annotations

import getpass
import os
import socket
from datetime import UTC, datetime


def who() -> str:
    """``LFM_USER`` when set (CI sets it to the pipeline's identity), else user@host."""
    explicit = os.environ.get("LFM_USER")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(stamp: str) -> float:
    """A stamp :func:`now` wrote, as seconds since the epoch."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
