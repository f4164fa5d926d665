"""Formats round-trip through each other and are read back by the training parser."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.dataset.errors import DatasetError
from lfm.dataset.formats import FORMATS, convert, to_messages, to_record
from lfm.runtime import formats as runtime_formats

CHAT = [
    {"role": "system", "content": "You answer from the manual."},
    {"role": "user", "content": "What is a probe?\n\nA probe is a steel rod."},
    {"role": "assistant", "content": "A steel rod with electrodes."},
]


@pytest.mark.parametrize("fmt", ["alpaca", "chatml", "messages", "sharegpt"])
def test_round_trip_through_every_format(fmt):
    record = to_record(CHAT, fmt, {"source": "guide.md"})
    assert to_messages(record, "auto", 0) == CHAT
    assert record["metadata"] == {"source": "guide.md"}
    # The runtime's parser (what training uses) accepts it as that format.
    runtime_formats.parse_record(record, fmt, 0)


def test_alpaca_fields():
    record = to_record(CHAT, "alpaca")
    assert record == {
        "instruction": "What is a probe?",
        "input": "A probe is a steel rod.",
        "output": "A steel rod with electrodes.",
        "system": "You answer from the manual.",
    }


def test_completion_is_plain_text_and_cannot_become_a_question():
    text = to_record(CHAT, "completion")["text"]
    assert "What is a probe?" in text and "A steel rod with electrodes." in text
    with pytest.raises(DatasetError, match="no question"):
        list(convert(iter([{"text": "just prose"}]), "auto", "alpaca"))


def test_multi_turn_chat_does_not_fit_alpaca():
    turns = CHAT + [{"role": "user", "content": "And?"}, {"role": "assistant", "content": "No."}]
    with pytest.raises(DatasetError, match="chatml or sharegpt"):
        to_record(turns, "alpaca")


def test_cli_convert_round_trip(tmp_path):
    source = tmp_path / "in.jsonl"
    records = [
        to_record(CHAT[:2] + [{**CHAT[2], "content": f"answer {i}"}], "alpaca") for i in range(3)
    ]
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    runner = CliRunner()
    chat = tmp_path / "chat.jsonl"
    done = runner.invoke(
        lfm, ["dataset", "convert", str(source), "--to", "chatml", "-o", str(chat)]
    )
    assert done.exit_code == 0, done.output
    back = tmp_path / "back.jsonl"
    done = runner.invoke(lfm, ["dataset", "convert", str(chat), "--to", "alpaca", "-o", str(back)])
    assert done.exit_code == 0, done.output
    assert [json.loads(x) for x in back.read_text().splitlines()] == [
        json.loads(x) for x in source.read_text().splitlines()
    ]
    again = runner.invoke(lfm, ["dataset", "convert", str(chat), "--to", "alpaca", "-o", str(back)])
    assert again.exit_code == 1 and "--force" in again.output


def test_cli_convert_bad_record_is_one_line(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"instruction": "q", "output": "a"}\n{"nothing": 1}\n')
    done = CliRunner().invoke(
        lfm,
        ["dataset", "convert", str(source), "--to", "sharegpt", "-o", str(tmp_path / "o.jsonl")],
    )
    assert done.exit_code == 1
    assert "record 2" in done.output and "Traceback" not in done.output  # its line
    assert not (tmp_path / "o.jsonl").exists()


def test_formats_list_matches_runtime():
    assert set(FORMATS) == set(runtime_formats.FORMATS) - {"auto"}
