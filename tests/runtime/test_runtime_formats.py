"""Record layouts: detection, aliases and the errors for records that do not fit."""

from __future__ import annotations

import pytest
from lfm.runtime import formats
from lfm.runtime.errors import RuntimeConfigError


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages"),
        ({"conversations": [{"from": "human", "value": "hi"}]}, "sharegpt"),
        ({"instruction": "a", "output": "b"}, "alpaca"),
        ({"question": "a", "answer": "b"}, "alpaca"),
        ({"text": "hello"}, "completion"),
        # Arrow fills other rows' keys with None; those must not count.
        ({"messages": None, "text": "hello"}, "completion"),
    ],
)
def test_detect_format(record: dict, expected: str) -> None:
    assert formats.detect_format(record) == expected


def test_detect_format_unknown_keys_names_them() -> None:
    with pytest.raises(RuntimeConfigError, match=r"record 1 \(keys: body, title\)"):
        formats.detect_format({"title": "x", "body": "y"})


def test_alpaca_aliases_and_missing_input() -> None:
    example = formats.parse_record({"prompt": "p", "response": "r", "input": None}, "alpaca", 0)
    assert example == formats.Alpaca(instruction="p", input="", output="r")


def test_sharegpt_maps_roles() -> None:
    record = {
        "conversations": [
            {"from": "system", "value": "s"},
            {"from": "human", "value": "q"},
            {"from": "gpt", "value": "a"},
        ]
    }
    example = formats.parse_record(record, "sharegpt", 0)
    assert [m["role"] for m in example.messages] == ["system", "user", "assistant"]


def test_missing_keys_name_record_and_expected_keys() -> None:
    with pytest.raises(
        RuntimeConfigError, match=r"record 8 .*'instruction' and 'output'.*keys: inst"
    ):
        formats.parse_record({"inst": "x", "output": "y"}, "alpaca", 7)


def test_bad_message_shape_is_reported() -> None:
    with pytest.raises(RuntimeConfigError, match=r"record 3 .*string 'role' and 'content'"):
        formats.parse_record({"messages": [{"role": "user"}]}, "messages", 2)


def test_unknown_sharegpt_speaker_is_reported() -> None:
    record = {"conversations": [{"from": "robot", "value": "x"}]}
    with pytest.raises(RuntimeConfigError, match=r"record 1 .*'from' \(one of"):
        formats.parse_record(record, "sharegpt", 0)
