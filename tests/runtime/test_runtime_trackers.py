"""train.py's first step: each configured tracker installed, logged in and reachable."""

from __future__ import annotations

import importlib.util
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from lfm.runtime import training
from lfm.runtime.errors import RuntimeConfigError
from loopback import QuietHandler, http_server


def test_a_missing_tracker_package_is_named_with_its_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real(name, *a),
    )
    with pytest.raises(RuntimeConfigError, match=r"monitoring.tensorboard is set but tensorboard"):
        training.check_trackers(["tensorboard"])
    training.check_trackers([])  # nothing configured, nothing checked


@pytest.fixture
def no_wandb_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No key in the environment, ~/.netrc or wandb's settings; stdin not a terminal."""
    pytest.importorskip("wandb")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setattr("sys.stdin", io.StringIO())
    import wandb

    wandb.teardown()  # wandb's process-wide settings, read again from this environment
    yield
    wandb.teardown()


@pytest.mark.usefixtures("no_wandb_key")
def test_wandb_without_a_key_fails_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeConfigError, match="no W&B API key here: run `wandb login`"):
        training.check_trackers(["wandb"])
    monkeypatch.setenv("WANDB_MODE", "offline")  # a local run needs no key
    training.check_trackers(["wandb"])


@pytest.mark.usefixtures("no_wandb_key")
def test_wandb_finds_a_key_in_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file `wandb login` writes is enough; nothing reaches the network (verify=False)."""
    (tmp_path / "netrc").write_text(
        f"machine api.wandb.ai\n  login user\n  password {'a' * 40}\n", encoding="utf-8"
    )
    (tmp_path / "netrc").chmod(0o600)
    monkeypatch.setenv("WANDB_SILENT", "true")  # no "logged in as" lookup on the network
    training.check_trackers(["wandb"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_mlflow_server_that_is_not_there_fails_in_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(RuntimeConfigError, match=rf"cannot reach the MLflow server at {uri} \("):
        training.check_trackers(["mlflow"])


class _Health(QuietHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(self.status)
        self.end_headers()


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    with http_server(handler) as url:
        yield url, handler


def test_an_answering_mlflow_server_passes_even_when_it_refuses_health(
    health_server: tuple[str, type[_Health]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    uri, handler = health_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri + "/")
    training.check_trackers(["mlflow"])
    handler.status = 401  # behind basic auth: the server is there, MLflow logs in later
    training.check_trackers(["mlflow"])


def test_an_mlflow_file_store_is_refused_with_the_sqlite_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MLflow 3 keeps its file store in maintenance mode: say so before the model loads."""
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    with pytest.raises(RuntimeConfigError, match=r"use a SQLite store instead, e.g. sqlite:///"):
        training.check_trackers(["mlflow"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")
    training.check_trackers(["mlflow"])
    assert (tmp_path / "new" / "mlflow.db").is_file()  # created as the run would create it


def test_only_the_main_process_opens_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ranks creating one SQLite store at once race on its tables; only rank 0 logs anyway."""
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("RANK", "1")
    training.check_trackers(["mlflow"])
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("uri", "store"),
    [
        ("sqlite:///runs/mlflow.db", ("sqlite:///", "runs/mlflow.db")),
        ("file:./mlruns", ("file://", "./mlruns")),
        ("./mlruns", ("", "./mlruns")),
        ("databricks", None),
        ("databricks://profile", None),
        ("postgresql://host/db", None),
        ("http://mlflow:5000", None),
    ],
)
def test_local_mlflow_stores_are_told_from_servers(uri: str, store: object) -> None:
    from lfm.runtime.trackers import mlflow_local_store

    assert mlflow_local_store(uri) == store


def test_a_relative_sqlite_store_is_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every path in a config; MLflow alone would take it from the working directory."""
    import runpy

    from click.testing import CliRunner
    from lfm.cli import lfm

    (tmp_path / "project").mkdir()
    config = tmp_path / "project" / "tracked.yaml"
    config.write_text(
        "model_config:\n  name: tracked\n  base_model: ./model\n"
        "  dataset: {source: {type: local, path: ./data.jsonl}}\n"
        "  monitoring: {mlflow_tracking_uri: 'sqlite:///runs/mlflow.db'}\n",
        encoding="utf-8",
    )
    bundle = tmp_path / "build" / "tracked"
    result = CliRunner().invoke(lfm, ["compile", str(config), "-o", str(bundle)])
    assert result.exit_code == 0, result.output
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):  # train.py sets them
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # started from elsewhere
    runpy.run_path(str(bundle / "train.py"), run_name="imported")  # module level only
    expected = f"sqlite:///{(tmp_path / 'project' / 'runs' / 'mlflow.db').resolve()}"
    assert os.environ["MLFLOW_TRACKING_URI"] == expected
