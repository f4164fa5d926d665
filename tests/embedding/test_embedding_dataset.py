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


CONTACT = """# Support guide

The support desk answers questions about invoices and refunds. Write to the desk at
helpdesk.owner@example.com when an invoice is wrong, and a person replies within two days.

Refunds are paid back to the card that paid the order. A refund takes five working days to
reach the card, and the desk sends a receipt when it is paid.
"""
SHIPPING = """# Shipping guide

Orders ship from the central warehouse every weekday. A shipped order carries a tracking number
that shows where the parcel is on its way to the customer. Parcels above ten kilograms travel
with a freight carrier and arrive within a week.
"""


def _pairs_and_report(tmp_path, pii):
    from lfm.dataset.quality.checks import QualitySettings

    doc = tmp_path / "docs" / "support.md"
    doc.parent.mkdir()
    doc.write_text(CONTACT, encoding="utf-8")
    (doc.parent / "shipping.md").write_text(SHIPPING, encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    options = CreateOptions(
        sources=(str(doc.parent),),
        keep_passages=True,
        workers=1,
        quality=QualitySettings(pii=pii),
    )
    report = create(options, out)
    return out.read_text(encoding="utf-8"), report


def test_a_kept_passage_has_its_personal_data_redacted_and_counted(tmp_path):
    text, report = _pairs_and_report(tmp_path, "redact")
    assert "helpdesk.owner@example.com" not in text
    passages = [json.loads(line)["metadata"]["passage"] for line in text.splitlines()]
    redacted = sum(p.count("[EMAIL]") for p in passages)
    assert redacted  # the chunk holding the address was kept, with the address redacted
    assert report["pii_redacted"]["EMAIL"] >= redacted


def test_pii_drop_drops_a_pair_whose_passage_holds_personal_data(tmp_path):
    text, report = _pairs_and_report(tmp_path, "drop")
    assert "helpdesk.owner@example.com" not in text and "[EMAIL]" not in text
    passages = [json.loads(line)["metadata"]["passage"] for line in text.splitlines()]
    assert passages and all(p.startswith("Orders ship") for p in passages), passages
    assert {json.loads(line)["metadata"]["source"] for line in text.splitlines()} == {"shipping.md"}
    assert report["filters"]["pii"]["removed"] >= 1
