"""A real `lfm serve` on a free loopback port, for the serving tests (and any test needing one)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    log: Path
    process: subprocess.Popen

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


@contextlib.contextmanager
def serving(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[Server]:
    """`lfm serve ARGS --port P` as a user runs it; waits for /ready, stops it at the end."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    command = [sys.executable, "-m", "lfm.cli", "serve", *args, "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"lfm serve exited {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{server.url}/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"lfm serve was not ready in {timeout}s:\n{log.read_text()}")
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
