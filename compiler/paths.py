"""How config values that name files are told apart from hub ids, and rebased for the bundle.

A value is a local path when it *looks* like one (`./`, `../`, `/`, `~`, or `.`), never because
a file happens to exist where `lfm compile` runs: the bundle must not depend on the machine that
compiled it. Relative paths are relative to the config file; the bundle stores them relative to
its own directory, so a bundle committed beside its config runs from any checkout.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

# One rule for "is this a path", shared with the runtime that resolves these values at run time.
from lfm.runtime.paths import is_local

__all__ = ["config_relative", "is_local", "rebase", "relative_posix"]


def relative_posix(target: Path, start: Path) -> str:
    """`target` relative to the directory `start`, with forward slashes."""
    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(start))
    return PurePosixPath(*Path(relative).parts).as_posix()


def rebase(value: str, config_dir: Path, bundle_dir: Path) -> str:
    """A config-relative local path -> the same file, relative to the bundle directory."""
    if value.startswith(("/", "~")):
        return value
    posix = relative_posix(
        Path(os.path.normpath(os.path.join(os.path.abspath(config_dir), value))), bundle_dir
    )
    return posix if posix.startswith("../") or posix == ".." else f"./{posix}"


def config_relative(value: str, config_dir: Path) -> Path:
    return Path(os.path.expanduser(value)) if value.startswith(("/", "~")) else config_dir / value
