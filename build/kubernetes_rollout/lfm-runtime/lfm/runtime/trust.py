"""Code that a config names runs only where the person running lfm allowed it.

A config is untrusted input: it may come from anyone. A setting in it that names code to import
(``quality_control.toxicity_scorer: "module:function"``) or a folder whose files run code (an
lm-eval task folder whose YAML has ``!function``) is honoured only with the user's say-so from
outside the config: ``LFM_TRUST_CODE``, a comma-separated list of module names and folders, or
a command's ``--trust-code`` (which sets it). A module of Python's standard library is never a
scorer, so it is never imported this way, allowed or not.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

ENV = "LFM_TRUST_CODE"


def allowed() -> list[str]:
    return [entry.strip() for entry in os.environ.get(ENV, "").split(",") if entry.strip()]


def allow(entries: Iterable[str]) -> None:
    """Trust these modules or folders for the rest of this process (and its children)."""
    os.environ[ENV] = ",".join(dict.fromkeys([*allowed(), *entries]))


def standard_library(module: str) -> bool:
    top = module.partition(".")[0]
    return top in sys.stdlib_module_names or top == "builtins"


def module_problem(module: str, setting: str) -> str | None:
    """Why ``module`` (named by ``setting``) may not be imported; None when it may."""
    top = module.partition(".")[0]
    if standard_library(module):
        return (
            f"{setting} names {module!r}, a module of Python's standard library: that is not a "
            "scorer, and lfm never imports it"
        )
    entries = allowed()
    if module in entries or top in entries:
        return None
    return (
        f"{setting} names code to import ({module}); lfm imports it only when you allow it: "
        f"set {ENV}={module} (or pass --trust-code {module} to an lfm command)"
    )


def folder_problem(folder: Path, setting: str) -> str | None:
    """Why the code in ``folder`` (named by ``setting``) may not run; None when it may."""
    target = folder.resolve()
    for entry in allowed():
        if Path(entry).expanduser().resolve() == target:
            return None
    return (
        f"{setting}: {folder} holds lm-eval task files with !function, which run Python code from "
        f"that folder; allow it with {ENV}={folder} (or --trust-code {folder} on an lfm command)"
    )
