"""Tokenize rendered text and label only the spans the model should learn.

Fast tokenizers tokenize the whole string once and map each token back to the
characters it covers (``return_offsets_mapping``), so training sees exactly the
tokens the full conversation produces. A token is trained on when it starts
inside a trainable span; tokens the tokenizer inserts itself (bos) cover no
characters and are never trained on. Slow tokenizers, which have no offsets,
tokenize each segment separately and concatenate the pieces instead.
"""

from __future__ import annotations

from typing import Any

from .render import Rendered, Span

IGNORE_INDEX = -100


def tokenize(
    rendered: Rendered, tokenizer: Any, *, max_length: int, train_on_inputs: bool = False
) -> tuple[list[int], list[int]]:
    """Return ``(input_ids, labels)`` truncated to ``max_length`` tokens."""
    if getattr(tokenizer, "is_fast", False):
        input_ids, labels = _by_offsets(rendered, tokenizer, max_length)
    else:
        input_ids, labels = _by_segments(rendered, tokenizer)
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if train_on_inputs:
        labels = list(input_ids)
    return input_ids, labels


def has_targets(labels: list[int]) -> bool:
    """Whether any token is learned; position 0 never is (labels shift by one)."""
    return any(label != IGNORE_INDEX for label in labels[1:])


def _by_offsets(rendered: Rendered, tokenizer: Any, max_length: int) -> tuple[list[int], list[int]]:
    encoding = tokenizer(
        rendered.text,
        add_special_tokens=rendered.add_special_tokens,
        return_offsets_mapping=True,
        truncation=True,
        max_length=max_length,
    )
    labels = [
        token if _trainable(start, end, rendered.spans) else IGNORE_INDEX
        for token, (start, end) in zip(
            encoding["input_ids"], encoding["offset_mapping"], strict=True
        )
    ]
    return list(encoding["input_ids"]), labels


def _trainable(start: int, end: int, spans: tuple[Span, ...]) -> bool:
    return end > start and any(lo <= start < hi for lo, hi in spans)


def _by_segments(rendered: Rendered, tokenizer: Any) -> tuple[list[int], list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    for i, (piece, trainable) in enumerate(_segments(rendered)):
        # Only the first piece gets the tokenizer's special tokens (bos), as one string would.
        add_special = rendered.add_special_tokens and i == 0
        ids = tokenizer(piece, add_special_tokens=add_special)["input_ids"]
        input_ids += ids
        labels += ids if trainable else [IGNORE_INDEX] * len(ids)
    return input_ids, labels


def _segments(rendered: Rendered) -> list[tuple[str, bool]]:
    """Split the text back into alternating ``(piece, trainable)`` segments."""
    segments, cursor = [], 0
    for start, end in rendered.spans:
        if start > cursor:
            segments.append((rendered.text[cursor:start], False))
        segments.append((rendered.text[start:end], True))
        cursor = end
    if cursor < len(rendered.text) or not segments:
        segments.append((rendered.text[cursor:], False))
    return segments
