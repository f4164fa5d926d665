"""Preference records as train.py reads them: detected, checked one by one with the record
and the problem named, split with pairs whole, unpaired for KTO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("datasets")
from lfm.runtime import preference  # noqa: E402
from lfm.runtime.data import DatasetSpec  # noqa: E402
from lfm.runtime.errors import RuntimeConfigError  # noqa: E402

PAIR = {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}


def write(tmp_path: Path, rows: list[dict]) -> DatasetSpec:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return DatasetSpec("local", str(path), "auto", 128, 0.25)


def test_pairs_split_whole_and_unpair_for_kto(tmp_path: Path) -> None:
    rows = [{**PAIR, "prompt": f"Q{i}"} for i in range(8)]
    train, held, pairs = preference.load_pairs(write(tmp_path, rows), paired=True)
    assert (len(train), len(held)) == (6, 2) and pairs is held
    assert set(held.column_names) == {"prompt", "chosen", "rejected"}
    kto_train, kto_eval, kto_pairs = preference.load_pairs(write(tmp_path, rows), paired=False)
    assert len(kto_train) == 12 and len(kto_eval) == 4  # a good and a bad completion per pair
    assert sorted(kto_train["label"]) == [False] * 6 + [True] * 6
    assert kto_pairs["prompt"] == held["prompt"]  # the same held-out pairs, whatever the objective


def test_conversational_pairs_are_kept_as_messages(tmp_path: Path) -> None:
    row = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    train, _, _ = preference.load_pairs(write(tmp_path, [row, row]), paired=True)
    assert train[0]["chosen"] == [{"role": "assistant", "content": "Hello!"}]


def test_unpaired_records_load_for_kto_and_are_refused_for_dpo(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Q", "completion": "good", "label": True},
        {"prompt": "Q", "completion": "bad", "label": False},
    ]
    spec = write(tmp_path, rows)
    train, _, pairs = preference.load_pairs(spec, paired=False)
    assert len(train) == 1 and pairs is None  # no pairs to score
    with pytest.raises(RuntimeConfigError, match="learns from pairs.*use objective kto"):
        preference.load_pairs(spec, paired=True)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**PAIR, "rejected": None}, "'rejected' is missing"),
        ({**PAIR, "chosen": "5"}, "chosen and rejected are the same"),
        ({**PAIR, "chosen": ""}, "'chosen' is empty"),
        ({**PAIR, "chosen": 4}, "'chosen' must be a string or a list"),
        ({**PAIR, "chosen": [{"role": "assistant"}]}, "'chosen' must be a string or a list"),
        ({**PAIR, "chosen": [{"role": "assistant", "content": "4"}]}, "all be text or all"),
    ],
)
def test_bad_records_are_named_with_their_problem(row: dict, message: str) -> None:
    with pytest.raises(RuntimeConfigError, match=message) as caught:
        preference.check_record(row, "preference", 7)
    # Counted from 1, as the lines of the JSONL file are.
    assert str(caught.value).startswith("dataset record 8 is not")
    assert "is not valid preference data" in str(caught.value)


def test_a_bad_record_in_a_file_is_named(tmp_path: Path) -> None:
    spec = write(tmp_path, [PAIR, PAIR, {**PAIR, "rejected": "4"}])
    with pytest.raises(RuntimeConfigError, match="dataset record 3 .*the same"):
        preference.load_pairs(spec, paired=True)
    with pytest.raises(RuntimeConfigError, match="record 1 is not preference data"):
        preference.load_pairs(write(tmp_path, [{"prompt": "Q", "chosen": "A"}]), paired=True)


@pytest.mark.parametrize(
    ("row", "fmt", "hint"),
    [
        (
            {"instruction": "Q", "output": "A"},
            "preference",
            "looks like supervised data (instruction and output), not preference data: set "
            "dataset.preprocessing.format: alpaca and fine_tuning.objective: sft",
        ),
        (
            {"prompt": "Q", "completion": "A", "label": True},
            "preference",
            "looks like KTO's unpaired form ('prompt', 'completion' and 'label' (true or false)): "
            "set dataset.preprocessing.format: unpaired_preference and fine_tuning.objective: kto",
        ),
        (PAIR, "unpaired_preference", "looks like a pair"),
        ({"messages": [{"role": "user", "content": "Q"}]}, "preference", "format: messages"),
    ],
)
def test_a_record_of_another_shape_says_which_format_it_is(row: dict, fmt: str, hint: str) -> None:
    with pytest.raises(RuntimeConfigError) as caught:
        preference.check_record(row, fmt, 0)
    message = str(caught.value)
    assert hint in message, message
    # A sentence, not a trailing list of keys.
    assert "It has " in message and message.endswith(".") and "found keys" not in message


def test_a_bad_value_names_no_keys(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError) as caught:
        preference.check_record({**PAIR, "chosen": "5"}, "preference", 0)
    assert str(caught.value) == (
        "dataset record 1 is not valid preference "
        "data: chosen and rejected are the same: nothing to prefer"
    )


def test_kto_labels_must_be_booleans(tmp_path: Path) -> None:
    rows = [{"prompt": "Q", "completion": "A", "label": True}, {"prompt": "Q", "completion": "B",
            "label": "yes"}]  # fmt: skip
    with pytest.raises(RuntimeConfigError, match="record 2 .*'label' must be true"):
        preference.load_pairs(write(tmp_path, rows), paired=False)


def test_a_split_needs_two_records(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError, match="only 1 record"):
        preference.load_pairs(write(tmp_path, [PAIR]), paired=True)


def test_sft_formats_refuse_preference_records() -> None:
    from lfm.runtime import formats

    with pytest.raises(RuntimeConfigError, match="set fine_tuning.objective"):
        formats.parse_record(PAIR, "preference", 0)


def test_auto_detection_under_sft_names_the_objective() -> None:
    from lfm.runtime import formats

    for record in (PAIR, {"prompt": "Q", "completion": "A", "label": False}):
        with pytest.raises(RuntimeConfigError, match="holds preference data.*set it to dpo"):
            formats.detect_format(record)


def test_evaluate_reads_the_same_held_out_pairs_as_train(tmp_path: Path) -> None:
    rows = [{**PAIR, "prompt": f"Q{i}"} for i in range(8)]
    spec = write(tmp_path, rows)
    _, _, trained = preference.load_pairs(spec, paired=False)  # KTO: trains unpaired
    assert preference.held_out_pairs(spec)["prompt"] == trained["prompt"]
    unpaired = [{"prompt": f"Q{i}", "completion": "A", "label": i % 2 == 0} for i in range(4)]
    with pytest.raises(RuntimeConfigError, match="no held-out pairs .*records are unpaired"):
        preference.held_out_pairs(write(tmp_path, unpaired))
