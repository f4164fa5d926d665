"""`lfm dataset create` keeps each pair's source chunk for task: embedding (and only then)."""

from __future__ import annotations

import json
from pathlib import Path

from lfm.dataset.create import create
from lfm.dataset.options import CreateOptions
from lfm.runtime.embedding import pair_from_record

DOCS = Path(__file__).resolve().parents[1] / "dataset" / "docs" / "guide.md"


def test_keep_passages_puts_the_chunk_and_its_document_in_each_record(tmp_path):
    out = tmp_path / "pairs.jsonl"
    create(CreateOptions(sources=(str(DOCS),), keep_passages=True, workers=1), out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records
    for index, record in enumerate(records):
        meta = record["metadata"]
        assert meta["source"] == "guide.md" and isinstance(meta["chunk"], int)
        pair = pair_from_record(record, index)
        assert pair.passage == meta["passage"] and pair.document == "guide.md"


def test_without_it_records_and_cache_keys_are_as_before():
    options = CreateOptions(sources=("docs",))
    assert "keep_passages" not in options.fingerprint()
    assert CreateOptions(sources=("docs",), keep_passages=True).fingerprint()["keep_passages"]
