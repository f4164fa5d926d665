"""Experiment trackers checked before training starts, not after the model has loaded.

transformers sets up TensorBoard, W&B and MLflow in the Trainer's first callback, minutes into
a run of a large model, and a missing package, a missing W&B key or an MLflow server that is
not there then ends the run with a traceback. :func:`check` finds the same problems in
seconds, first thing in ``train.py``, and says each in one line with its fix.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable

from .errors import RuntimeConfigError, first_line
from .launch import is_main_process

# The package each tracker's transformers callback imports, and the config field that asks for it.
_PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), "monitoring.tensorboard", "lfm[monitor]"),
    "wandb": (("wandb",), "monitoring.wandb_project", "wandb"),
    "mlflow": (("mlflow",), "monitoring.mlflow_tracking_uri", "mlflow"),
}
# W&B needs no key in these modes: it writes the run locally (`wandb sync` uploads it later).
_WANDB_LOCAL_MODES = ("offline", "disabled", "dryrun")
_MLFLOW_TIMEOUT_SECONDS = 5.0
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # RFC 3986; a path has none


def check(trackers: Iterable[str]) -> None:
    """Raise :class:`RuntimeConfigError` when a tracker of ``report_to`` cannot work here.

    Every process needs the packages (each builds the trackers' callbacks); only the main
    process logs, so only it logs in and opens the store (processes creating one SQLite
    store at once would race on its tables).
    """
    for tracker in trackers:
        if tracker in _PACKAGES:
            _check_installed(tracker)
        if not is_main_process():
            continue
        if tracker == "wandb":
            _check_wandb_key()
        elif tracker == "mlflow":
            uri = os.environ.get("MLFLOW_TRACKING_URI", "")
            if uri.startswith(("http://", "https://")):
                _check_mlflow_server(uri)
            elif mlflow_local_store(uri):
                _check_mlflow_store(uri)
            # Other stores (Databricks, a SQL database) are MLflow's to reach.


def mlflow_local_store(uri: str) -> tuple[str, str] | None:
    """``(URI prefix, path)`` when ``uri`` names a local MLflow store (a SQLite file, a file
    store, a bare path); None for a server or a remote store."""
    if uri.startswith("databricks"):  # "databricks", "databricks://profile", "databricks-uc"
        return None
    for scheme, canonical in (
        ("sqlite:///", "sqlite:///"),
        ("file://", "file://"),
        ("file:", "file://"),
    ):
        if uri.startswith(scheme):
            return canonical, uri.removeprefix(scheme)
    return None if _URI_SCHEME.match(uri) else ("", uri)


def _check_installed(tracker: str) -> None:
    modules, field, package = _PACKAGES[tracker]
    if not any(importlib.util.find_spec(module) for module in modules):
        raise RuntimeConfigError(
            f"{field} is set but {modules[0]} is not installed: pip install '{package}' "
            f"(or remove {field.split('.')[-1]} from the config's monitoring block)"
        )


def _check_wandb_key() -> None:
    """Without a key, and with no terminal to ask for one, ``wandb.init`` fails mid-run."""
    if (
        os.environ.get("WANDB_MODE", "").lower() in _WANDB_LOCAL_MODES
        or os.environ.get("WANDB_API_KEY")
        or sys.stdin is None
        or sys.stdin.isatty()  # wandb asks for the key itself
    ):
        return
    import wandb

    try:  # finds a key in ~/.netrc or wandb's settings (no terminal: it cannot prompt)
        wandb.login(verify=False)
    except wandb.errors.UsageError:
        raise RuntimeConfigError(
            "monitoring.wandb_project: no W&B API key here: run `wandb login`, set "
            "WANDB_API_KEY, or set WANDB_MODE=offline to keep the run local (`wandb sync` "
            "uploads it later)"
        ) from None


def _check_mlflow_server(uri: str) -> None:
    """An HTTP tracking server must answer; MLflow itself would retry for minutes first."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=_MLFLOW_TIMEOUT_SECONDS):
            pass
    except urllib.error.HTTPError:
        return  # the server answered (a proxy or its auth may refuse /health): it is there
    except OSError as exc:  # URLError (refused, unknown host) or a timeout
        reason = first_line(Exception(getattr(exc, "reason", exc)))
        raise RuntimeConfigError(
            f"monitoring.mlflow_tracking_uri: cannot reach the MLflow server at {uri} "
            f"({reason}); start it, or fix the URI (MLFLOW_TRACKING_URI in the environment "
            "overrides the config)"
        ) from None


def _check_mlflow_store(uri: str) -> None:
    """A local store (a SQLite file, or a path: MLflow 3's file store is refused unless
    MLFLOW_ALLOW_FILE_STORE is set) opened as the run will open it; SQLite's is created."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri or None).search_experiments(max_results=1)
    except MlflowException as exc:
        sentence = first_line(exc).split(". ")[0]
        raise RuntimeConfigError(
            f"monitoring.mlflow_tracking_uri {uri or '(MLflow default ./mlruns)'}: {sentence}; "
            "use a SQLite store instead, e.g. sqlite:///mlflow.db (relative to the config)"
        ) from None
