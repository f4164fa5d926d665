"""The lfm code a bundle carries: its runtime (and, for a document source, the dataset pipeline)
as plain source under ``lfm-runtime/``, with a pyproject.toml that makes it pip-installable.

Why source in the bundle, not a name on a package index: a bundle must run on a box that has
only the bundle, and it must run the runtime it was compiled with. Carried as source, that code
is reviewable in the bundle's diff (a new lfm release shows up as the lines that changed), it
is byte-for-byte what this lfm ships (so bundles stay deterministic and `lfm compile --check`
notices a runtime that moved on), and `pip install -r requirements.txt` installs it with the
pinned packages, in a venv or an image, from the bundle directory alone. Git stores each file
once however many bundles carry it.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from .diagnostics import CompileError, Diagnostic

DIRECTORY = "lfm-runtime"  # the distribution's folder in the bundle
DISTRIBUTION = "lfm-runtime"  # its name for pip (not held by anyone on PyPI)


def vendored_files(packages: tuple[str, ...]) -> dict[str, str]:
    """Bundle path -> source text of every module of ``lfm.<package>`` for each package."""
    files: dict[str, str] = {}
    for package in packages:
        files.update(_package_files(package))
    return files


@cache
def _package_files(package: str) -> dict[str, str]:
    root = _package_folder(f"lfm.{package}")
    return {
        f"{DIRECTORY}/lfm/{package}/{relative}": entry.read_text(encoding="utf-8")
        for relative, entry in sorted(_modules(root, ""))
    }


def _package_folder(name: str) -> Path:
    """Where a package's files are, found without importing it: compiling a bundle that
    carries lfm.dataset must not load the dataset pipeline (the compile path stays light).

    It must be the package of the lfm that is compiling (beside this compiler), not a bundle's
    lfm-runtime installed into the same environment, which would shadow it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed as a package folder")
    folder = Path(next(iter(spec.submodule_search_locations)))
    ours = Path(__file__).resolve().parent.parent
    if folder.resolve().parent != ours:
        raise CompileError(
            [
                Diagnostic(
                    "error",
                    f"{name} is imported from {folder}, not from the lfm that is compiling "
                    f"({ours}): a bundle's {DISTRIBUTION} is installed in this environment",
                    (),
                    None,
                    f"pip uninstall {DISTRIBUTION} here, and install bundles in their own "
                    "virtualenv",
                )
            ]
        )
    return folder


def _modules(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    """(path relative to the package, file) of every .py file, subpackages included."""
    found = []
    for entry in folder.iterdir():
        if entry.name.startswith((".", "__pycache__")):
            continue
        if entry.is_dir():
            found += _modules(entry, f"{prefix}{entry.name}/")
        elif entry.is_file() and entry.name.endswith(".py"):
            found.append((f"{prefix}{entry.name}", entry))
    return found
