"""Render an example to one training string plus the character spans to learn.

Two layouts:

- The tokenizer has a chat template: conversations (and alpaca records, as a
  user/assistant pair) go through ``tokenizer.apply_chat_template``. Assistant
  turns are located by rendering prefixes: the text of ``messages[:i]`` with the
  generation prompt marks where assistant turn ``i`` starts, and ``messages[:i+1]``
  where it ends. Comparing each prefix with the full rendering by longest common
  prefix (rather than assuming it is an exact prefix) stays correct for templates
  that render earlier turns slightly differently. The template's own end-of-turn
  marker ends each assistant span, so no extra eos is appended.
- No chat template: the classic Alpaca prompt for alpaca records, a
  ``### User:`` / ``### Assistant:`` layout for conversations, raw text for
  completions. The eos token is appended to every response so the model learns
  to stop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import RuntimeConfigError
from .formats import Alpaca, Chat, Completion, Example, record_name

Span = tuple[int, int]

ALPACA_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
ALPACA_PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)


@dataclass(frozen=True)
class Rendered:
    """Training text, the ``[start, end)`` character spans to learn, and tokenizer flags."""

    text: str
    spans: tuple[Span, ...]
    # Plain text gets the tokenizer's usual bos; chat templates already write their own.
    add_special_tokens: bool


def render(example: Example, tokenizer: Any, index: int) -> Rendered:
    """Render ``example`` (record ``index``) the way ``tokenizer`` expects."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if isinstance(example, Completion):
        return _plain([(example.text + _eos(tokenizer), True)])
    if isinstance(example, Alpaca):
        if has_template:
            return _chat_template(example.messages(), tokenizer, index)
        return _plain(_alpaca_segments(example, _eos(tokenizer)))
    if isinstance(example, Chat):
        if has_template:
            return _chat_template(list(example.messages), tokenizer, index)
        return _plain(_conversation_segments(example.messages, _eos(tokenizer)))
    raise TypeError(f"unexpected example type {type(example).__name__}")


def _eos(tokenizer: Any) -> str:
    return tokenizer.eos_token or ""


def _plain(segments: Sequence[tuple[str, bool]]) -> Rendered:
    """Join ``(text, trainable)`` segments, remembering where trainable ones lie."""
    text, spans = "", []
    for piece, trainable in segments:
        if trainable and piece:
            spans.append((len(text), len(text) + len(piece)))
        text += piece
    return Rendered(text=text, spans=tuple(spans), add_special_tokens=True)


def _alpaca_segments(example: Alpaca, eos: str) -> list[tuple[str, bool]]:
    template = ALPACA_PROMPT_WITH_INPUT if example.input else ALPACA_PROMPT
    prompt = template.format(instruction=example.instruction, input=example.input)
    return [(prompt, False), (example.output + eos, True)]


def _conversation_segments(messages: Sequence[dict[str, str]], eos: str) -> list[tuple[str, bool]]:
    segments: list[tuple[str, bool]] = []
    for i, message in enumerate(messages):
        if i:
            segments.append(("\n\n", False))
        role, content = message["role"], message["content"]
        if role == "system":
            segments.append((content, False))
        elif role == "assistant":
            segments += [("### Assistant:\n", False), (content + eos, True)]
        else:
            segments.append((f"### {role.capitalize()}:\n{content}", False))
    return segments


def _chat_template(messages: list[dict[str, str]], tokenizer: Any, index: int) -> Rendered:
    full = _apply(tokenizer, messages, False, index)
    spans: list[Span] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # A conversation opening with an assistant turn has no prefix to render.
        start = _shared(_apply(tokenizer, messages[:i], True, index), full) if i else 0
        end = _shared(_apply(tokenizer, messages[: i + 1], False, index), full)
        # Keep spans ordered and disjoint even if a template re-renders earlier turns.
        start = max(start, spans[-1][1]) if spans else start
        if end > start:
            spans.append((start, end))
    return Rendered(text=full, spans=tuple(spans), add_special_tokens=False)


def _apply(
    tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool, index: int
) -> str:
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
    except Exception as exc:  # templates raise arbitrary errors (jinja, raise_exception)
        raise RuntimeConfigError(
            f"{record_name(index)}: the tokenizer's chat template rejected this conversation "
            f"({exc}); fix the record's roles/order to match what the base model expects"
        ) from exc


def _shared(prefix: str, full: str) -> int:
    """Length of the longest common prefix of two strings."""
    return len(os.path.commonprefix([prefix, full]))
