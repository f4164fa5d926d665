"""POST /v1/feedback on a real `lfm serve`: one feedback per answer, what users typed kept out of
the log unless the server runs with --feedback-text, and a log that cannot be written (or is
full) a clear 503 that loses nothing."""

from __future__ import annotations

import json
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


def _answer(server: Server) -> str:
    status, body = _post(server, "/v1/completions", {
        "model": "tiny", "prompt": "hello", "max_tokens": 2, "temperature": 0,
    })  # fmt: skip
    assert status == 200, body
    return body["id"]


def test_feedback_is_once_per_answer_keeps_typed_text_out_and_fails_clearly(
    models, tmp_path: Path
) -> None:
    from lfm.serving.rollout_api import MAX_FEEDBACK_LOG_BYTES

    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log's folder should be")  # the log cannot be written
    log = blocker / "feedback.jsonl"
    with serving(str(models.base), "--served-name", "tiny", "--feedback-log", str(log),
                 cwd=tmp_path) as server:  # fmt: skip
        first, second = _answer(server), _answer(server)
        feedback = {"id": first, "rating": 0, "preferred": "my secret answer",
                    "comment": "call me at my secret number"}  # fmt: skip
        status, body = _post(server, "/v1/feedback", feedback)
        assert status == 503, body
        message = body["error"]["message"]
        assert "feedback log could not be written" in message and "\n" not in message
        blocker.unlink()
        # Nothing lost: the same feedback, sent again once the log can be written, is taken.
        assert _post(server, "/v1/feedback", feedback)[0] == 200

        # One feedback per answer: a second one cannot stuff the ratings.
        status, body = _post(server, "/v1/feedback", {"id": first, "rating": 1})
        assert status == 409 and "has feedback already" in body["error"]["message"]
        assert _post(server, "/v1/feedback", {"id": second, "rating": 1})[0] == 200
        assert _post(server, "/v1/feedback", {"id": second, "preferred": "x"})[0] == 409

        text = log.read_text()
        lines = [json.loads(line) for line in text.splitlines()]
        assert [(line["id"], line["rating"]) for line in lines] == [(first, 0.0), (second, 1.0)]
        # Without --feedback-text, what the user typed stays out: only that it was given.
        assert "secret" not in text
        assert lines[0]["preferred"] is True and lines[0]["comment"] is True
        assert lines[1]["preferred"] is None and lines[1]["comment"] is None

        # A full log: refused, clearly, and nothing is appended.
        with log.open("r+b") as out:
            out.truncate(MAX_FEEDBACK_LOG_BYTES)  # sparse: no disk used
        status, body = _post(server, "/v1/feedback", {"id": _answer(server), "rating": 1})
        assert status == 503 and "feedback log is full" in body["error"]["message"]
        assert log.stat().st_size == MAX_FEEDBACK_LOG_BYTES


def test_with_feedback_text_the_preferred_answer_and_comment_are_logged(
    models, tmp_path: Path
) -> None:
    log = tmp_path / "feedback.jsonl"
    with serving(str(models.base), "--served-name", "tiny", "--feedback-log", str(log),
                 "--feedback-text", cwd=tmp_path) as server:  # fmt: skip
        ident = _answer(server)
        feedback = {"id": ident, "preferred": "a better one", "comment": "too short"}
        assert _post(server, "/v1/feedback", feedback)[0] == 200
    line = json.loads(log.read_text())
    assert (line["preferred"], line["comment"], line["rating"]) == (
        "a better one",
        "too short",
        None,
    )
