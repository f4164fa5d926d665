"""SFT data: every format tokenizes with loss only on responses, then truncates and splits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from lfm.runtime import data, labeling, render
from lfm.runtime.errors import RuntimeConfigError
from lfm.runtime.formats import Alpaca

IGNORE = -100


def load(path: Path, tokenizer: Any, **overrides: Any) -> tuple[Any, Any]:
    fields = {"format": "auto", "max_length": 256, "holdout_ratio": 0.0} | overrides
    spec = data.DatasetSpec(source_type="local", path=path.name, **fields)
    return data.load_sft_dataset(spec, tokenizer, base_dir=path.parent)


def label_runs(tokenizer: Any, row: dict[str, list[int]]) -> list[str]:
    """Decode each contiguous run of labelled tokens."""
    runs: list[list[int]] = []
    previous = IGNORE
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label != IGNORE:
            assert label == token
            if previous == IGNORE:
                runs.append([])
            runs[-1].append(token)
        previous = label
    return [tokenizer.decode(run) for run in runs]


def test_alpaca_labels_only_the_response(tokenizer, write_jsonl) -> None:
    path = write_jsonl([{"instruction": "Say hi", "input": "politely", "output": "Hi there"}])
    train, evaluation = load(path, tokenizer, format="alpaca")
    assert evaluation is None
    assert train.column_names == ["input_ids", "attention_mask", "labels"]
    row = train[0]
    text = tokenizer.decode(row["input_ids"])
    assert text.startswith("<s>Below is an instruction") and "### Input:\npolitely" in text
    assert label_runs(tokenizer, row) == ["Hi there</s>"]
    # Everything before the response is masked; the response runs to the end.
    first = row["labels"].index(next(x for x in row["labels"] if x != IGNORE))
    assert set(row["labels"][:first]) == {IGNORE}
    assert row["attention_mask"] == [1] * len(row["input_ids"])


@pytest.mark.parametrize("fmt", ["messages", "chatml"])
def test_messages_label_every_assistant_turn(tokenizer, write_jsonl, fmt: str) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "Second answer"},
    ]
    train, _ = load(write_jsonl([{"messages": messages}]), tokenizer, format=fmt)
    assert label_runs(tokenizer, train[0]) == ["First answer</s>", "Second answer</s>"]
    assert "### User:\nTwo?" in tokenizer.decode(train[0]["input_ids"])


def test_sharegpt(tokenizer, write_jsonl) -> None:
    turns = [{"from": "human", "value": "Hello?"}, {"from": "gpt", "value": "Hello back"}]
    train, _ = load(write_jsonl([{"conversations": turns}]), tokenizer, format="sharegpt")
    assert label_runs(tokenizer, train[0]) == ["Hello back</s>"]


def test_completion_trains_on_all_text(tokenizer, write_jsonl) -> None:
    train, _ = load(write_jsonl([{"text": "Plain words here."}]), tokenizer, format="completion")
    assert label_runs(tokenizer, train[0]) == ["Plain words here.</s>"]
    assert train[0]["labels"][0] == IGNORE  # the bos the tokenizer adds


def test_chat_template_masks_all_but_assistant_turns(chat_tokenizer, write_jsonl) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "Second answer"},
    ]
    train, _ = load(write_jsonl([{"messages": messages}]), chat_tokenizer)
    text = chat_tokenizer.decode(train[0]["input_ids"])
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    # The template's end-of-turn marker (also eos here) is learned with each answer.
    assert label_runs(chat_tokenizer, train[0]) == [
        "First answer<|im_end|>\n",
        "Second answer<|im_end|>\n",
    ]


def test_alpaca_uses_the_chat_template_when_there_is_one(chat_tokenizer, write_jsonl) -> None:
    path = write_jsonl([{"instruction": "Add", "input": "2 and 3", "output": "5"}])
    train, _ = load(path, chat_tokenizer)
    text = chat_tokenizer.decode(train[0]["input_ids"])
    assert text.startswith("<|im_start|>user\nAdd\n\n2 and 3<|im_end|>")
    assert label_runs(chat_tokenizer, train[0]) == ["5<|im_end|>\n"]


def test_auto_detects_each_file_format(tokenizer, write_jsonl) -> None:
    turns = [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]
    explicit, _ = load(
        write_jsonl([{"conversations": turns}], "a.jsonl"), tokenizer, format="sharegpt"
    )
    auto, _ = load(write_jsonl([{"conversations": turns}], "b.jsonl"), tokenizer)
    assert auto[0] == explicit[0]


def test_train_on_inputs_labels_everything(tokenizer, write_jsonl) -> None:
    train, _ = load(
        write_jsonl([{"instruction": "Q", "output": "A"}]), tokenizer, train_on_inputs=True
    )
    assert train[0]["labels"] == train[0]["input_ids"]


def test_truncation_and_dropping(tokenizer, write_jsonl, caplog) -> None:
    records = [
        {"instruction": "Short", "output": "A fairly long answer " * 10},
        {"instruction": "Long prompt " * 40, "output": "cut off entirely"},
    ]
    with caplog.at_level(logging.WARNING, logger="lfm.runtime.data"):
        # The Alpaca preamble alone is ~80 tokens with the tiny tokenizer.
        train, _ = load(write_jsonl(records), tokenizer, max_length=120)
    assert len(train) == 1
    assert len(train[0]["input_ids"]) == 120
    assert train[0]["labels"][-1] != IGNORE  # cut inside the response, eos lost
    assert "Dropped 1 of 2 examples" in caplog.text


def test_all_dropped_is_an_error(tokenizer, write_jsonl) -> None:
    path = write_jsonl([{"instruction": "Long prompt " * 40, "output": "x"}])
    with pytest.raises(RuntimeConfigError, match="max_length=120"):
        load(path, tokenizer, max_length=120)


def test_bad_record_names_its_index(tokenizer, write_jsonl) -> None:
    path = write_jsonl([{"instruction": "Q", "output": "A"}, {"instruction": "Q", "reply": "A"}])
    with pytest.raises(RuntimeConfigError, match=r"record 2 does not match format 'alpaca'"):
        load(path, tokenizer)


def test_holdout_split_sizes_and_determinism(tokenizer, write_jsonl) -> None:
    path = write_jsonl([{"instruction": f"Q{i}", "output": f"A{i}"} for i in range(10)])
    train, evaluation = load(path, tokenizer, holdout_ratio=0.2, seed=1)
    assert (len(train), len(evaluation)) == (8, 2)
    _, again = load(path, tokenizer, holdout_ratio=0.2, seed=1)
    assert again["input_ids"] == evaluation["input_ids"]
    _, other = load(path, tokenizer, holdout_ratio=0.2, seed=2)
    assert other["input_ids"] != evaluation["input_ids"]


def test_holdout_keeps_one_example_each_side(tokenizer, write_jsonl) -> None:
    path = write_jsonl([{"instruction": f"Q{i}", "output": "A"} for i in range(2)])
    train, evaluation = load(path, tokenizer, holdout_ratio=0.01)
    assert (len(train), len(evaluation)) == (1, 1)
    single = write_jsonl([{"instruction": "Q", "output": "A"}], "one.jsonl")
    with pytest.raises(RuntimeConfigError, match="split_ratio is 0.5 but only 1"):
        load(single, tokenizer, holdout_ratio=0.5)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", "yaml", "dataset.preprocessing.format 'yaml'"),
        ("holdout_ratio", 1.0, "dataset.validation.split_ratio is 1.0"),
        ("max_length", 0, "max_length is 0"),
        ("source_type", "s3", "dataset.source.type 's3'"),
    ],
)
def test_spec_validation(field: str, value: Any, message: str) -> None:
    fields = {
        "source_type": "local",
        "path": "x.jsonl",
        "format": "auto",
        "max_length": 8,
        "holdout_ratio": 0.0,
    }
    with pytest.raises(RuntimeConfigError, match=message):
        data.DatasetSpec(**(fields | {field: value}))


def test_collator_pads_to_multiple_of_8(tokenizer, write_jsonl) -> None:
    path = write_jsonl(
        [{"instruction": "Q", "output": "A"}, {"instruction": "Q" * 9, "output": "B"}]
    )
    train, _ = load(path, tokenizer)
    batch = data.collator(tokenizer, pad_to_multiple_of=8)([train[0], train[1]])
    assert batch["input_ids"].shape[1] % 8 == 0
    short = min(len(train[0]["input_ids"]), len(train[1]["input_ids"]))
    row = 0 if len(train[0]["input_ids"]) == short else 1
    assert (batch["labels"][row, short:] == IGNORE).all()
    assert (batch["attention_mask"][row, short:] == 0).all()


class _SlowTokenizer:
    """A tokenizer without offset mapping, to exercise the segment-wise fallback."""

    is_fast = False

    def __init__(self, fast: Any) -> None:
        self._fast = fast
        self.eos_token = fast.eos_token
        self.chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self._fast(text, add_special_tokens=add_special_tokens)["input_ids"]}


def test_slow_tokenizer_fallback_labels_the_same_response(tokenizer) -> None:
    slow = _SlowTokenizer(tokenizer)
    rendered = render.render(Alpaca("Say hi", "", "Hi there"), slow, 0)
    input_ids, labels = labeling.tokenize(rendered, slow, max_length=256)
    assert input_ids[0] == tokenizer.bos_token_id
    assert label_runs(tokenizer, {"input_ids": input_ids, "labels": labels}) == ["Hi there</s>"]
