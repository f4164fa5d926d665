"""OpenAI's API shapes: requests checked into :class:`Request`, answers and errors built back.

Errors have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so the
``openai`` client raises its own exceptions with our message.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from .engine import Sampling

MAX_TOKENS_DEFAULT = 256
MAX_STOP_CHARS = 256  # each stop string is searched for at every token


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def bad(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


@dataclass(frozen=True)
class Request:
    model: str
    stream: bool
    include_usage: bool
    sampling: Sampling
    messages: list[dict[str, str]] | None  # chat
    prompt: str | None  # completion


def parse(body: Any, *, chat: bool) -> Request:
    """A chat or completion request body -> :class:`Request`, or :class:`APIError` (400)."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model is required: the base model's name or a loaded adapter's", "model")
    if body.get("n") not in (None, 1):
        raise bad("n must be 1", "n")
    messages, prompt = (_messages(body), None) if chat else (None, _prompt(body))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("stream must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("stream_options must be an object", "stream_options")
    return Request(
        model=model,
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        sampling=_sampling(body, chat),
        messages=messages,
        prompt=prompt,
    )


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages must be a non-empty list", "messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
            "developer",
        ):
            raise bad(f"messages[{i}] needs a role: system, user or assistant", "messages")
        content = message.get("content")
        if isinstance(content, list):  # content parts: the text ones, joined
            parts = [p.get("text") for p in content if isinstance(p, dict)]
            if not all(isinstance(p, str) for p in parts) or not parts:
                raise bad(f"messages[{i}].content: only text parts are supported", "messages")
            content = "".join(parts)  # type: ignore[arg-type]
        if not isinstance(content, str):
            raise bad(f"messages[{i}].content must be text", "messages")
        role = "system" if message["role"] == "developer" else message["role"]
        out.append({"role": role, "content": content})
    return out


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("prompt must be a string (one prompt per request)", "prompt")
    return prompt


def _sampling(body: dict[str, Any], chat: bool) -> Sampling:
    name = "max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens"
    max_tokens = body.get(name)
    if max_tokens is None:
        max_tokens = MAX_TOKENS_DEFAULT
    if not _integer(max_tokens) or max_tokens <= 0:
        raise bad(f"{name} must be a positive integer", name)
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not _number(temperature) or not 0 <= temperature <= 2:
        raise bad("temperature must be between 0 and 2", "temperature")
    top_p = body.get("top_p", 1.0)
    if top_p is None:
        top_p = 1.0
    if not _number(top_p) or not 0 < top_p <= 1:
        raise bad("top_p must be more than 0 and at most 1", "top_p")
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or len(stop) > 4
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stop)
    ):
        raise bad(
            f"stop must be a string or a list of up to 4, each 1 to {MAX_STOP_CHARS} characters",
            "stop",
        )
    seed = body.get("seed")
    if seed is not None and not (_integer(seed) and 0 <= seed < 2**63):
        raise bad("seed must be an integer from 0 to 2**63 - 1", "seed")
    return Sampling(int(max_tokens), float(temperature), float(top_p), tuple(stop), seed)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---- answers ------------------------------------------------------------------------------------


def new_id(chat: bool) -> str:
    return f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def answer(
    chat: bool, ident: str, model: str, text: str, reason: str, counts: dict[str, int]
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return {
        "id": ident,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": counts,
    }


def chunk(
    chat: bool,
    ident: str,
    model: str,
    created: int,
    text: str | None,
    reason: str | None,
    *,
    first: bool = False,
) -> dict[str, Any]:
    """One server-sent event of a streamed answer: ``text`` "" with a ``reason`` is the last
    one (OpenAI's empty delta), None is the usage event after it (no choice)."""
    choices: list[dict[str, Any]] = []
    if text is not None:
        choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None}
        if chat:
            choice["delta"] = {"role": "assistant"} if first else {}
            if text:
                choice["delta"]["content"] = text
        else:
            choice["text"] = text
        choices.append(choice)
    return {
        "id": ident,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
