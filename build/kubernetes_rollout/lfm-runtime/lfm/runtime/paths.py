"""Resolve path-like config values against the bundle directory.

The compiler writes local paths relative to the bundle, so ``train.py`` passes its
own directory as ``base_dir``. A value that does not look like a path (for example
``meta-llama/Llama-2-7b-hf``) is a hub id and is passed through untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

_LOCAL_PREFIXES = ("./", "../", "/", "~")


def is_local(value: str) -> bool:
    """True when ``value`` is syntactically a local path rather than a hub id."""
    return value in (".", "..") or value.startswith(_LOCAL_PREFIXES)


def resolve(path_or_id: str, base_dir: str | os.PathLike[str] | None = None) -> str:
    """Return a local path resolved against ``base_dir``; return a hub id unchanged."""
    if not is_local(path_or_id):
        return path_or_id
    return str(resolve_local(path_or_id, base_dir))


def resolve_local(
    path: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Resolve a value that is known to be local (e.g. ``dataset.source.path``).

    Unlike :func:`resolve` this does not require a ``./`` prefix: ``data/x.jsonl``
    is taken relative to ``base_dir`` (the current directory when ``None``).
    """
    return absolute_local(path, base_dir).resolve()


def absolute_local(
    path: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None
) -> Path:
    """:func:`resolve_local` without following symbolic links: a data file that is a link
    must still look like one, to be judged by :mod:`lfm.runtime.links`."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir if base_dir is not None else Path.cwd()) / candidate
    return Path(os.path.abspath(candidate))
