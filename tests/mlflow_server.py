"""A real `mlflow server` on loopback for the tests that need one (the registry's MLflow backend,
training's MLflow tracking). Importable from any test: pytest puts tests/ on sys.path."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mlflow(root: Path, *extra: str, env: dict[str, str] | None = None):
    """`mlflow server` on a free loopback port with a SQLite store; returns (process, uri)."""
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
    log = open(root / "server.log", "w")  # noqa: SIM115 (the server writes to it until it stops)
    server = subprocess.Popen(
        [
            *command,
            "server",
            *extra,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    log.close()
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 420  # a loaded CI machine can take minutes
    while True:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            return server, uri
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(
                    f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)


def stop_mlflow(server) -> None:
    os.killpg(server.pid, 15)
    server.wait(timeout=30)
