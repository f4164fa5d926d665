"""The HTTP side of rollouts: routing a request to its variant, answering a failed candidate
request on stable instead, ``POST /v1/feedback`` and ``GET /v1/rollouts``.

Feedback is kept per variant in memory (for the guard rails and the A/B report) and appended
to a JSONL file, one object per line (the README's "Feedback" lists the fields). One feedback
per answer: a second one for the same answer id is refused (409).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response

from .adapters import Adapter
from .auth import Caller
from .protocol import APIError, bad
from .rollout import CANDIDATE, STABLE, VariantRoute, hidden

if TYPE_CHECKING:
    from .server import ModelServer

SESSION_HEADER = "x-lfm-session"
MAX_KEY_CHARS = 256
MAX_COMMENT_CHARS = 4000
# The feedback log only grows (one line per rated answer, up to ~8 KiB with its texts): past
# this size POST /v1/feedback is refused (503) rather than fill the server's disk; the
# operator moves the log away (or points --feedback-log elsewhere) and feedback goes on.
MAX_FEEDBACK_LOG_BYTES = 256 * 1024 * 1024
_writing = threading.Lock()


def sticky_key(http: HTTPRequest, body: Any) -> str | None:
    """The key that keeps a caller on one variant: ``X-LFM-Session``, else OpenAI's ``user``."""
    key = http.headers.get(SESSION_HEADER)
    if not key and isinstance(body, dict) and isinstance(body.get("user"), str):
        key = body["user"]
    return key[:MAX_KEY_CHARS] if key else None


def acquire(
    server: ModelServer, model: str, key: str | None
) -> tuple[Adapter | None, VariantRoute | None]:
    """The adapter that answers a request for ``model`` (held until released), and the rollout
    route it took, if any. A candidate's (or a kept old version's) own name is not for clients."""
    if hidden(model):
        return None, None
    route = server.rollouts.route(model, key)
    if route is None:
        return server.adapters.acquire(model), None
    adapter = server.adapters.acquire(route.adapter)
    if adapter is None and route.variant == CANDIDATE:  # unloaded this instant: stable answers
        return stable_instead(server, route)
    return adapter, route


def stable_instead(server: ModelServer, route: VariantRoute) -> tuple[Adapter | None, VariantRoute]:
    adapter = server.adapters.acquire(route.stable)
    version = (adapter.version if adapter else None) or route.version
    return adapter, replace(route, adapter=route.stable, variant=STABLE, version=version)


def record(
    server: ModelServer, route: VariantRoute, status: str, latency: float, tokens: int
) -> None:
    """One request's outcome for its variant (a client that left counts for neither)."""
    if status == "499":
        return
    labels = (route.stable, route.variant, route.version)
    metrics = server.metrics
    metrics.variant_requests.labels(*labels, status).inc()
    if status == "200":
        metrics.variant_latency.labels(*labels).observe(latency)
        metrics.variant_tokens.labels(*labels).inc(tokens)
    server.rollouts.record(route, status == "200", latency, tokens)


# ---- feedback ---------------------------------------------------------------------------------


async def feedback(server: ModelServer, http: HTTPRequest, caller: Caller, body: Any) -> Response:
    """``{"id": "<an answer's id>", "rating": 0..1, "preferred": "...", "comment": "..."}``
    (a rating, a better answer, or both): recorded for the variant that answered and appended
    to the feedback log."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    ident, rating, comment = body.get("id"), body.get("rating"), body.get("comment")
    preferred = body.get("preferred")
    if not isinstance(ident, str) or not ident:
        raise bad("id is required: the id of an answer this server gave", "id")
    if rating is None and preferred is None:
        raise bad("give a rating (0 bad to 1 good), a preferred answer, or both", "rating")
    if rating is not None and (
        isinstance(rating, bool) or not isinstance(rating, int | float) or not 0 <= rating <= 1
    ):
        raise bad("rating must be a number from 0 (bad) to 1 (good)", "rating")
    for name, value in (("comment", comment), ("preferred", preferred)):
        if value is not None and (not isinstance(value, str) or len(value) > MAX_COMMENT_CHARS):
            raise bad(f"{name} must be text of at most {MAX_COMMENT_CHARS} characters", name)
    if preferred is not None and not preferred.strip():
        raise bad("preferred is empty: give the answer that should have been given", "preferred")
    answer = server.rollouts.answered(ident)
    if answer is None:
        raise APIError(404, f"no answer {ident!r} was given here recently", param="id")
    if not server.rollouts.claim_feedback(ident):
        raise APIError(
            409,
            f"answer {ident!r} has feedback already: one per answer (send its rating and a "
            "preferred answer in one request)",
            param="id",
            code="feedback_exists",
        )
    recorded = False
    try:
        log = server.feedback_log
        if log is not None:
            await run_in_threadpool(_check_room, log)
        if rating is not None:  # in memory first: the guard rails count it whatever the disk
            first = server.rollouts.rate(answer, float(rating), ident)
            if first and answer.get("variant"):
                server.metrics.variant_ratings.labels(
                    answer["model"], answer["variant"], answer["version"] or ""
                ).observe(float(rating))
        if log is not None:
            line = _line(ident, answer, rating, preferred, comment, caller, server.feedback_text)
            try:
                await run_in_threadpool(_append, log, line)
            except OSError as exc:
                raise APIError(
                    503,
                    f"the feedback log could not be written ({exc.strerror or exc}); the rating "
                    "counts for the rollout here: send the feedback again to log it",
                    kind="server_error",
                    code="feedback_log_unwritable",
                ) from None
        recorded = True
    finally:
        server.rollouts.settle_feedback(ident, recorded)
    return JSONResponse({"object": "feedback", "id": ident, "recorded": True})


def _line(
    ident: str,
    answer: dict[str, Any],
    rating: float | None,
    preferred: str | None,
    comment: str | None,
    caller: Caller,
    with_text: bool,
) -> dict[str, Any]:
    """The log's line: what the user typed (``preferred``, ``comment``) only when the server
    keeps texts (--feedback-text), like the prompt and the answer; else only whether they were
    given (true, or null)."""
    return {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "id": ident,
        **answer,
        "rating": None if rating is None else float(rating),
        "preferred": preferred if with_text or preferred is None else True,
        "comment": comment if with_text or comment is None else True,
        "by": caller.who,
    }


def _check_room(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError:  # none yet, or unreadable: writing it says what is wrong, if anything
        return
    if size >= MAX_FEEDBACK_LOG_BYTES:
        raise APIError(
            503,
            f"the feedback log is full ({size // 2**20} MiB, at most "
            f"{MAX_FEEDBACK_LOG_BYTES // 2**20} MiB): the operator must move it away; nothing "
            "was recorded",
            kind="server_error",
            code="feedback_log_full",
        )


def _append(path: Path, line: dict[str, Any]) -> None:
    text = json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n"
    with _writing:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(text)


async def rollouts(server: ModelServer, http: HTTPRequest, caller: Caller) -> Response:
    """The rollouts live here: their state, each variant's totals and the A/B report."""
    return JSONResponse({"object": "list", "data": server.rollouts.describe()})
