"""The feedback loop for real: a server started with --feedback-text records the prompt and
the answer a user rated or corrected, and `lfm dataset from-feedback` turns the log into
preference pairs that a DPO bundle reads."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from lfm_server import Server, serving


def _post(server: Server, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _chat(server: Server, question: str) -> dict:
    status, body = _post(server, "/v1/chat/completions", {
        "model": "tiny", "messages": [{"role": "user", "content": question}],
        "max_tokens": 4, "temperature": 0,
    })  # fmt: skip
    assert status == 200, body
    return body


def test_rated_and_corrected_answers_become_preference_pairs(models, tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    args = (str(models.base), "--served-name", "tiny", "--feedback-log", str(log),
            "--feedback-text")  # fmt: skip
    with serving(*args, cwd=tmp_path) as server:
        first = _chat(server, "Where is the office? Mail me at ann@example.com")
        text = first["choices"][0]["message"]["content"]
        better = "On the second floor, room 204."
        status, _ = _post(server, "/v1/feedback", {"id": first["id"], "rating": 0,
                                                   "preferred": better})  # fmt: skip
        assert status == 200
        second = _chat(server, "Where is the office? Mail me at ann@example.com")
        assert _post(server, "/v1/feedback", {"id": second["id"], "rating": 1})[0] == 200
        # A rating is optional with a preferred answer; one of the two is needed.
        assert _post(server, "/v1/feedback", {"id": second["id"]})[0] == 400
        assert _post(server, "/v1/feedback", {"id": second["id"], "preferred": " "})[0] == 400
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["prompt"][0]["role"] == "user" and lines[0]["answer"] == text
    assert lines[0]["preferred"] == better and lines[1]["rating"] == 1.0

    pairs = tmp_path / "pairs.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", "dataset", "from-feedback", str(log), "-o", str(pairs)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "personal data redacted" in done.stdout
    records = [json.loads(line) for line in pairs.read_text().splitlines()]
    corrected = records[0]
    assert corrected["chosen"] == [{"role": "assistant", "content": better}]
    assert corrected["rejected"] == [{"role": "assistant", "content": text}]
    assert "ann@example.com" not in pairs.read_text() and "[EMAIL]" in pairs.read_text()

    from lfm.runtime import preference
    from lfm.runtime.data import DatasetSpec

    spec = DatasetSpec("local", str(pairs), "auto", 128, 0.0)
    train, _, _ = preference.load_pairs(spec, paired=True)  # what a DPO bundle reads
    assert len(train) == len(records)


def test_without_feedback_text_the_log_keeps_no_words(models, tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    with serving(str(models.base), "--served-name", "tiny", "--feedback-log", str(log),
                 cwd=tmp_path) as server:  # fmt: skip
        answer = _chat(server, "secret question")
        assert _post(server, "/v1/feedback", {"id": answer["id"], "rating": 1})[0] == 200
    line = json.loads(log.read_text())
    assert "prompt" not in line and "answer" not in line
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", "dataset", "from-feedback", str(log),
         "-o", str(tmp_path / "out.jsonl")], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and "--feedback-text" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
