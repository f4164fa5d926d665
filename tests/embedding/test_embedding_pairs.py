"""Pairs for an embedding model: read from records, split by document, bad records refused."""

from __future__ import annotations

import json

import pytest
from conftest import pair_records
from lfm.runtime.data import DatasetSpec
from lfm.runtime.embedding import Pair, load_pairs, pair_from_record, split_by_document
from lfm.runtime.errors import RuntimeConfigError


def _spec(path: str, ratio: float = 0.4) -> DatasetSpec:
    return DatasetSpec(
        source_type="local", path=path, format="auto", max_length=64, holdout_ratio=ratio
    )


def test_a_record_without_a_passage_is_one_clear_error():
    with pytest.raises(RuntimeConfigError, match=r"record 3 has no passage"):
        pair_from_record({"question": "What is a list?"}, 2, "pairs.jsonl")
    with pytest.raises(RuntimeConfigError, match=r"record 1 has no question"):
        pair_from_record({"passage": "Lists hold items."}, 0)


def test_dataset_create_records_give_their_kept_passage_and_document():
    record = {
        "instruction": "What do lists hold?",
        "output": "items",
        "metadata": {"source": "lists.html", "chunk": 2, "passage": "Lists hold items in order."},
    }
    assert pair_from_record(record, 0) == Pair(
        "What do lists hold?", "Lists hold items in order.", "lists.html"
    )


def test_documents_are_held_out_whole_and_stably():
    pairs = [pair_from_record(r, i) for i, r in enumerate(pair_records())]
    train, test = split_by_document(pairs, 0.4, seed=42)
    assert {p.document for p in train}.isdisjoint({p.document for p in test})
    assert len({p.document for p in test}) == 2
    assert (train, test) == split_by_document(pairs, 0.4, seed=42)


def test_local_pairs_load_with_every_passage_in_the_corpus(tmp_path):
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pair_records()))
    data = load_pairs(_spec("./pairs.jsonl"), tmp_path, None)
    assert len(data.train) + len(data.test) == 20 and len(data.passages) == 10
    assert all(next(iter(ids)) in data.passages for ids in data.relevant().values())


def test_an_empty_split_is_one_clear_error(tmp_path):
    one_document = [dict(r, document="only") for r in pair_records()]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in one_document))
    with pytest.raises(RuntimeConfigError, match=r"no document could be held out.*empty split"):
        load_pairs(_spec("./pairs.jsonl"), tmp_path, None)


def test_pairs_without_passages_stop_before_training(tmp_path):
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(RuntimeConfigError, match=r"record 1 has no passage"):
        load_pairs(_spec("./pairs.jsonl"), tmp_path, None)
