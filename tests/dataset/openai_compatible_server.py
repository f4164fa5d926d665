"""A small OpenAI-compatible chat completions server for the HTTP generator tests.

    python openai_compatible_server.py --fail-first 2 --key sk-test --delay 0.05

Prints ``PORT <n>`` once listening on 127.0.0.1. ``POST /v1/chat/completions`` answers with
question/answer pairs built from the prompt's text (JSON, as the generator asks), or a one-line
paraphrase for paraphrase prompts. The first ``--fail-first`` requests get 429 (Retry-After: 0)
so the client's retries are exercised. ``GET /stats`` returns the request log: counts, arrival
times and the most requests in flight at once.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"requests": 0, "answered": 0, "rejected": 0, "times": [], "in_flight": 0,
         "max_in_flight": 0, "bad_auth": 0}  # fmt: skip


def reply_for(prompt: str) -> str:
    if prompt.startswith("Rewrite this question"):
        question = prompt.rsplit("Question:", 1)[1].strip()
        return f"Could you tell me: {question[0].lower()}{question[1:]}"
    text = prompt.split("Text:\n", 1)[1]
    count = int(re.search(r"Write (\d+)", prompt).group(1))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 3]
    pairs = [
        {"question": f"What does the document state in sentence {i + 1}?", "answer": s}
        for i, s in enumerate(sentences[:count])
    ]
    return "Here you go:\n" + json.dumps(pairs)


class Handler(BaseHTTPRequestHandler):
    fail_first = 0
    key: str | None = None
    delay = 0.0

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with LOCK:
            body = json.dumps(STATE).encode()
        self._send(200, body)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length))
        with LOCK:
            STATE["requests"] += 1
            STATE["times"].append(time.monotonic())
            number = STATE["requests"]
            STATE["in_flight"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
        try:
            if self.key and self.headers.get("Authorization") != f"Bearer {self.key}":
                with LOCK:
                    STATE["bad_auth"] += 1
                self._send(401, b'{"error": "bad key"}')
                return
            if number <= self.fail_first:
                with LOCK:
                    STATE["rejected"] += 1
                self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                return
            time.sleep(self.delay)
            content = reply_for(request["messages"][-1]["content"])
            payload = {
                "id": f"cmpl-{number}",
                "object": "chat.completion",
                "model": request["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],  # fmt: skip
            }
            with LOCK:
                STATE["answered"] += 1
            self._send(200, json.dumps(payload).encode())
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--key")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    Handler.fail_first, Handler.key, Handler.delay = args.fail_first, args.key, args.delay
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
