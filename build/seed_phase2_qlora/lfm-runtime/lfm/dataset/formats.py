"""Write examples in the training formats lfm reads, and convert files between them.

An example is held as a list of chat messages (system?, user, assistant, ...) plus metadata;
each format is one way of spelling that. ``completion`` is plain text (continued pre-training):
the create pipeline writes chunk text there, and conversion renders a conversation as text.
Reading reuses :mod:`lfm.runtime.formats`, the parser training uses, so a file this module
writes is read back by training exactly as checked here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from lfm.runtime import formats as runtime_formats
from lfm.runtime.errors import RuntimeConfigError

from .errors import DatasetError

FORMATS = ("alpaca", "chatml", "messages", "sharegpt", "completion")
# Metadata naming augmentation groups: an original carries its EXAMPLE_ID, each variant made
# from it (template, paraphrase) carries AUGMENTED_FROM with the same value.
EXAMPLE_ID = "example_id"
AUGMENTED_FROM = "augmented_from"
_SHAREGPT_FROM = {"user": "human", "assistant": "gpt", "system": "system"}

Messages = list[dict[str, str]]


def qa_messages(question: str, answer: str, context: str = "") -> Messages:
    prompt = f"{question}\n\n{context}" if context else question
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def to_record(
    messages: Messages, fmt: str, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``messages`` spelled in ``fmt``; ``metadata`` kept under the ``metadata`` key."""
    record: dict[str, Any]
    if fmt == "alpaca":
        record = _alpaca(messages)
    elif fmt in ("chatml", "messages"):
        record = {"messages": [dict(m) for m in messages]}
    elif fmt == "sharegpt":
        record = {
            "conversations": [
                {"from": _SHAREGPT_FROM[m["role"]], "value": m["content"]} for m in messages
            ]
        }
    elif fmt == "completion":
        record = {"text": as_text(messages)}
    else:
        raise DatasetError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if metadata:
        record["metadata"] = dict(metadata)
    return record


def _alpaca(messages: Messages) -> dict[str, Any]:
    users = [m for m in messages if m["role"] == "user"]
    answers = [m for m in messages if m["role"] == "assistant"]
    if len(users) != 1 or len(answers) != 1:
        raise DatasetError(
            "alpaca holds one instruction and one response; this conversation has "
            f"{len(users)} user and {len(answers)} assistant turns (use chatml or sharegpt)"
        )
    instruction, _, context = users[0]["content"].partition("\n\n")
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    record = {"instruction": instruction, "input": context, "output": answers[0]["content"]}
    if system:
        record["system"] = system
    return record


def augmentation_group(record: Mapping[str, Any]) -> str | None:
    """The augmentation group a record belongs to (see EXAMPLE_ID), or None."""
    meta = record.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    group = meta.get(AUGMENTED_FROM, meta.get(EXAMPLE_ID))
    return group if isinstance(group, str) and group else None


def as_text(messages: Messages) -> str:
    """A conversation as plain text: its turns in order, separated by blank lines."""
    return "\n\n".join(m["content"] for m in messages)


def to_messages(record: Mapping[str, Any], fmt: str, index: int) -> Messages:
    """Messages of one record in ``fmt`` (``auto`` detects), via the training parser."""
    try:
        fmt = runtime_formats.detect_format(record) if fmt == "auto" else fmt
        example = runtime_formats.parse_record(record, fmt, index)
    except RuntimeConfigError as err:
        raise DatasetError(str(err)) from None
    if isinstance(example, runtime_formats.Alpaca):
        messages = example.messages()
        system = record.get("system")
        return (
            [{"role": "system", "content": system}] if isinstance(system, str) else []
        ) + messages
    if isinstance(example, runtime_formats.Chat):
        return [dict(m) for m in example.messages]
    return [{"role": "assistant", "content": example.text}]


def detect(record: Mapping[str, Any]) -> str:
    try:
        return runtime_formats.detect_format(record)
    except RuntimeConfigError:
        raise DatasetError(
            f"cannot tell the format of the first record (keys: {', '.join(sorted(record))}); "
            f"give --from"
        ) from None


def convert(records: Iterator[dict[str, Any]], source_fmt: str, target: str) -> Iterator[dict]:
    """Each record rewritten in ``target``; metadata carried along. ``auto`` detects the format
    from the first record, as training does, and holds every record to it."""
    for index, record in enumerate(records):
        if source_fmt == "auto":
            source_fmt = detect(record)
        messages = to_messages(record, source_fmt, index)
        if target != "completion" and not any(m["role"] == "user" for m in messages):
            raise DatasetError(
                f"record {index + 1} is plain text (completion); it has no question to convert to "
                f"{target}"
            )
        yield to_record(messages, target, record.get("metadata"))
