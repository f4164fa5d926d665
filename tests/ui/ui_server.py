"""A real `lfm ui` on a free loopback port, as a user starts it (for the UI tests)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lfm_server import free_port


@dataclass
class UI:
    url: str  # http://127.0.0.1:PORT
    log: Path


@contextlib.contextmanager
def running_ui(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[UI]:
    """`lfm ui ARGS --port P`; waits until it answers /health, stops it at the end."""
    port = free_port()
    log = cwd / f"ui-{port}.log"
    command = [sys.executable, "-m", "lfm.cli", "ui", *args, "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    ui = UI(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"lfm ui exited {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{ui.url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"lfm ui did not answer in {timeout}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield ui
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
