"""A minimal Language Server Protocol client over stdio, standard library only.

Enough of LSP to drive the Red Hat YAML language server from tests: JSON-RPC 2.0 messages
with `Content-Length` framing, a reader thread that routes responses to waiting requests by
id, collects `textDocument/publishDiagnostics` notifications, and answers the requests the
server sends to the client (`workspace/configuration`, `client/registerCapability`, ...).

Every wait is bounded by a timeout, and `close()` always ends the server process.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER_JS = HERE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
INSTALL_COMMAND = "tests/lsp/install.sh"


class LspError(RuntimeError):
    """The server answered a request with an error, or did not answer in time."""


def yaml_settings(schema_path: Path, file_match: list[str]) -> dict[str, Any]:
    """The `yaml` settings section: the local schema only, never a network schema store."""
    return {
        "schemas": {schema_path.resolve().as_uri(): file_match},
        "schemaStore": {"enable": False},
        "kubernetesCRDStore": {"enable": False},
        "validate": True,
        "completion": True,
        "hover": True,
        "format": {"enable": False},
    }


class LspClient:
    """One language server process and the JSON-RPC conversation with it."""

    def __init__(self, command: list[str], settings: dict[str, Any], cwd: Path | None = None):
        self.settings = settings  # answered for workspace/configuration, keyed by section
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._pending: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._cond = threading.Condition()  # guards diagnostics, config_requests and stderr
        self.diagnostics: dict[str, list[list[dict[str, Any]]]] = {}  # uri -> every publication
        self.config_requests = 0
        self.stderr: list[str] = []
        self._versions: dict[str, int] = {}
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- framing -----------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        header = f"Content-Length: {len(body)}\r\n\r\n".encode("ascii")
        with self._write_lock:
            assert self._proc.stdin is not None
            self._proc.stdin.write(header + body)
            self._proc.stdin.flush()

    def _read_message(self) -> dict[str, Any] | None:
        stream = self._proc.stdout
        assert stream is not None
        length = None
        while True:  # headers, up to the blank line
            line = stream.readline()
            if not line:
                return None  # the server closed its stdout
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            raise LspError("message without a Content-Length header")
        return json.loads(stream.read(length).decode("utf-8"))

    # -- dispatch (reader thread) ------------------------------------------------------------

    def _read_stdout(self) -> None:
        while True:
            try:
                message = self._read_message()
            except (OSError, ValueError):
                message = None
            if message is None:
                break
            if "id" in message and "method" in message:
                self._answer_server_request(message)
            elif "id" in message:
                with self._pending_lock:
                    waiter = self._pending.pop(message["id"], None)
                if waiter is not None:
                    waiter.put(message)
            elif message.get("method") == "textDocument/publishDiagnostics":
                params = message["params"]
                with self._cond:
                    self.diagnostics.setdefault(params["uri"], []).append(params["diagnostics"])
                    self._cond.notify_all()
        with self._cond:  # wake any waiter: nothing more will come
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            with self._cond:
                self.stderr.append(raw.decode("utf-8", "replace"))

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        method = message["method"]
        result: Any = None  # client/registerCapability, window/workDoneProgress/create, ...
        if method == "workspace/configuration":
            items = message["params"]["items"]
            result = [self.settings.get(item.get("section", ""), None) for item in items]
            with self._cond:
                self.config_requests += 1
                self._cond.notify_all()
        self._send({"id": message["id"], "result": result})

    # -- requests and notifications ----------------------------------------------------------

    def request(self, method: str, params: Any, timeout: float = 10.0) -> Any:
        with self._pending_lock:
            self._next_id += 1
            request_id = self._next_id
            waiter: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
            self._pending[request_id] = waiter
        self._send({"id": request_id, "method": method, "params": params})
        try:
            response = waiter.get(timeout=timeout)
        except queue.Empty:
            with self._pending_lock:
                self._pending.pop(request_id, None)
            raise LspError(
                f"{method}: no response in {timeout}s; stderr: {self.stderr[-5:]}"
            ) from None
        if "error" in response:
            raise LspError(f"{method}: {response['error']}")
        return response.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Block until predicate() holds (checked on every message), or raise LspError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._proc.poll() is not None:
                    raise LspError(f"timed out waiting for {what}; stderr: {self.stderr[-5:]}")
                self._cond.wait(remaining)

    # -- lifecycle ---------------------------------------------------------------------------

    def initialize(self, root: Path, timeout: float = 20.0) -> dict[str, Any]:
        capabilities = {
            "workspace": {"configuration": True, "didChangeConfiguration": {}},
            "textDocument": {
                "synchronization": {"dynamicRegistration": False},
                "completion": {
                    "completionItem": {
                        "snippetSupport": True,
                        "documentationFormat": ["markdown", "plaintext"],
                    }
                },
                "hover": {"contentFormat": ["markdown", "plaintext"]},
                "publishDiagnostics": {"relatedInformation": False},
            },
        }
        result = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root.resolve().as_uri(),
                "workspaceFolders": None,
                "capabilities": capabilities,
                "initializationOptions": {},
                "locale": "en",
            },
            timeout=timeout,
        )
        self.notify("initialized", {})
        # The server pulls its settings (workspace/configuration) once initialized.
        self.wait_for(lambda: self.config_requests > 0, timeout, "workspace/configuration")
        return result

    def close(self, timeout: float = 5.0) -> None:
        """Shut the server down politely, then make sure the process is gone."""
        try:
            if self._proc.poll() is None:
                self.request("shutdown", None, timeout=timeout)
                self.notify("exit", None)
                self._proc.wait(timeout=timeout)
        except (LspError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=timeout)
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()

    # -- documents ---------------------------------------------------------------------------

    def open(self, uri: str, text: str, language_id: str = "yaml") -> None:
        with self._cond:
            self.diagnostics.pop(uri, None)
        self._versions[uri] = 1
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}},
        )

    def change(self, uri: str, text: str) -> None:
        """Replace the whole text (servers accept full-text changes under incremental sync)."""
        with self._cond:
            self.diagnostics.pop(uri, None)
        self._versions[uri] += 1
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": self._versions[uri]},
                "contentChanges": [{"text": text}],
            },
        )

    def close_document(self, uri: str) -> None:
        self._versions.pop(uri, None)
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def wait_for_diagnostics(self, uri: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first diagnostics published for uri since it was opened or changed."""
        self.wait_for(lambda: uri in self.diagnostics, timeout, f"diagnostics for {uri}")
        with self._cond:
            return self.diagnostics[uri][0]

    def completion(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        result = self.request(
            "textDocument/completion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 1},
            },
        )
        if result is None:
            return []
        return result["items"] if isinstance(result, dict) else result

    def hover(self, uri: str, line: int, character: int) -> dict[str, Any] | None:
        return self.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
