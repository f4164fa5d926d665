"""Turn raw dataset records into typed examples, one format at a time.

Supported layouts (``dataset.preprocessing.format``):

- ``alpaca``: ``{"instruction", "input"?, "output"}``; the aliases
  ``{"prompt", "response"}``, ``{"prompt", "completion"}`` and
  ``{"question", "answer"}`` are read the same way.
- ``chatml`` / ``messages``: ``{"messages": [{"role", "content"}, ...]}``.
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|"system", "value"}, ...]}``.
- ``completion``: ``{"text"}``: plain text, every token is trained on.

``auto`` picks one of these from the keys of the first record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import RuntimeConfigError

FORMATS = ("auto", "alpaca", "chatml", "messages", "sharegpt", "completion")
# Read by lfm.runtime.preference, for fine_tuning.objective dpo, orpo, kto and simpo.
PREFERENCE_FORMATS = ("preference", "unpaired_preference")

# (prompt key, response key) pairs accepted as alpaca records, in detection order.
ALPACA_KEYS = (
    ("instruction", "output"),
    ("prompt", "response"),
    ("prompt", "completion"),
    ("question", "answer"),
)

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}

_EXPECTED = {
    "alpaca": "'instruction' and 'output' (optional 'input')",
    "chatml": "'messages': a list of {'role', 'content'}",
    "messages": "'messages': a list of {'role', 'content'}",
    "sharegpt": "'conversations': a list of {'from', 'value'}",
    "completion": "'text'",
}


@dataclass(frozen=True)
class Alpaca:
    """An instruction, optional input and the response to learn."""

    instruction: str
    input: str
    output: str

    def messages(self) -> list[dict[str, str]]:
        """The same example as a two-turn chat, for tokenizers with a chat template."""
        prompt = f"{self.instruction}\n\n{self.input}" if self.input else self.instruction
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": self.output}]


@dataclass(frozen=True)
class Chat:
    """A conversation; only assistant turns are trained on."""

    messages: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Completion:
    """Plain text trained on in full."""

    text: str


Example = Alpaca | Chat | Completion


def detect_format(record: Mapping[str, Any]) -> str:
    """Guess the format from a record's keys (used for ``format: auto``)."""
    if _present(record, "messages"):
        return "messages"
    if _present(record, "conversations"):
        return "sharegpt"
    # Before alpaca: a KTO record's prompt and completion would read as an alpaca pair.
    if (_present(record, "chosen") and _present(record, "rejected")) or (
        _present(record, "completion") and _present(record, "label")
    ):
        raise RuntimeConfigError(
            f"{record_name(0)} holds preference data (keys: {_keys(record)}), and "
            "fine_tuning.objective is sft: set it to dpo, orpo, kto or simpo to train on it"
        )
    if _alpaca_keys(record) is not None:
        return "alpaca"
    if _present(record, "text"):
        return "completion"
    raise RuntimeConfigError(
        f"dataset.preprocessing.format 'auto': cannot tell the format of {record_name(0)} "
        f"(keys: {_keys(record)}); "
        f"expected 'messages', 'conversations', 'instruction'+'output' or 'text', or set "
        f"dataset.preprocessing.format explicitly"
    )


def parse_record(record: Mapping[str, Any], fmt: str, index: int) -> Example:
    """Convert one raw record of format ``fmt`` into an :data:`Example`."""
    if fmt == "alpaca":
        return _parse_alpaca(record, index)
    if fmt in ("chatml", "messages"):
        return Chat(_parse_messages(record, index, fmt))
    if fmt == "sharegpt":
        return Chat(_parse_sharegpt(record, index))
    if fmt == "completion":
        return Completion(_text(record, "text", index, fmt))
    if fmt in PREFERENCE_FORMATS:
        raise RuntimeConfigError(
            f"dataset.preprocessing.format {fmt!r} holds preference data: set "
            "fine_tuning.objective to dpo, orpo, kto or simpo to train on it"
        )
    raise RuntimeConfigError(
        f"dataset.preprocessing.format {fmt!r} is not supported; use one of {', '.join(FORMATS)}"
    )


def _present(record: Mapping[str, Any], key: str) -> bool:
    """A key counts only when set: Arrow fills keys missing from a row with None."""
    return record.get(key) is not None


def _keys(record: Mapping[str, Any]) -> str:
    """The keys a record really has (Arrow adds other rows' keys as None)."""
    return ", ".join(sorted(k for k, v in record.items() if v is not None)) or "none"


def _alpaca_keys(record: Mapping[str, Any]) -> tuple[str, str] | None:
    for prompt_key, response_key in ALPACA_KEYS:
        if _present(record, prompt_key) and _present(record, response_key):
            return prompt_key, response_key
    return None


def _parse_alpaca(record: Mapping[str, Any], index: int) -> Alpaca:
    keys = _alpaca_keys(record)
    if keys is None:
        raise _bad_record(record, index, "alpaca")
    prompt_key, response_key = keys
    extra = record.get("input")
    return Alpaca(
        instruction=_text(record, prompt_key, index, "alpaca"),
        input="" if extra is None else _text(record, "input", index, "alpaca"),
        output=_text(record, response_key, index, "alpaca"),
    )


def _parse_messages(record: Mapping[str, Any], index: int, fmt: str) -> tuple[dict[str, str], ...]:
    turns = _turns(record, "messages", index, fmt)
    messages = []
    for turn in turns:
        role, content = turn.get("role"), turn.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise _bad_record(record, index, fmt, "each message needs string 'role' and 'content'")
        messages.append({"role": role, "content": content})
    return tuple(messages)


def _parse_sharegpt(record: Mapping[str, Any], index: int) -> tuple[dict[str, str], ...]:
    messages = []
    for turn in _turns(record, "conversations", index, "sharegpt"):
        speaker, value = turn.get("from"), turn.get("value")
        if speaker not in SHAREGPT_ROLES or not isinstance(value, str):
            allowed = ", ".join(SHAREGPT_ROLES)
            raise _bad_record(
                record, index, "sharegpt", f"each turn needs 'from' (one of {allowed}) and 'value'"
            )
        messages.append({"role": SHAREGPT_ROLES[speaker], "content": value})
    return tuple(messages)


def _turns(record: Mapping[str, Any], key: str, index: int, fmt: str) -> list[Mapping[str, Any]]:
    turns = record.get(key)
    if not isinstance(turns, list) or not turns or not all(isinstance(t, Mapping) for t in turns):
        raise _bad_record(record, index, fmt)
    return turns


def _text(record: Mapping[str, Any], key: str, index: int, fmt: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise _bad_record(record, index, fmt, f"{key!r} must be a string")
    return value


def record_name(index: int) -> str:
    """A record as errors name it: counted from 1, as a JSONL file's lines are (blank lines
    aside, which the reader skips), whatever the source (a CSV's header or a hub split too)."""
    return f"dataset record {index + 1}"


def _bad_record(
    record: Mapping[str, Any], index: int, fmt: str, detail: str | None = None
) -> RuntimeConfigError:
    problem = detail or f"expected {_EXPECTED[fmt]}"
    return RuntimeConfigError(
        f"{record_name(index)} does not match format {fmt!r}: {problem} "
        f"(found keys: {_keys(record)}); "
        f"fix the record or set dataset.preprocessing.format"
    )
