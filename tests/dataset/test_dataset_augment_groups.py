"""Augmentation groups: the variants made from one record name it, `dataset check` does not
take them for near duplicates of one another, and real near duplicates are still caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.dataset.create import create
from lfm.dataset.options import CreateOptions

DOCS = Path(__file__).resolve().parent / "docs"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def augmented(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aug") / "aug.jsonl"
    create(CreateOptions(sources=(str(DOCS),), augmentation=True, workers=1), out)
    return out


def _check(path: Path, tmp_path: Path) -> dict:
    report = tmp_path / f"{path.stem}.check.json"
    done = CliRunner().invoke(lfm, ["dataset", "check", str(path), "--report", str(report)])
    assert done.exit_code == 0, done.output
    return json.loads(report.read_text())


def test_variants_name_their_original(augmented):
    records = _lines(augmented)
    ids = [r["metadata"]["example_id"] for r in records if "example_id" in r["metadata"]]
    variants = [
        r["metadata"]["augmented_from"] for r in records if "augmented_from" in r["metadata"]
    ]
    assert variants and len(ids) == len(set(ids))
    assert set(variants) <= set(ids)


def test_check_keeps_an_augmented_dataset_whole(augmented, tmp_path):
    # Without the groups, a template variant of a short question reads as a near copy of it.
    report = _check(augmented, tmp_path)
    assert report["filters"]["near_duplicate"]["flagged"] == 0
    assert report["would_keep"] == report["records"]


def test_check_still_finds_near_duplicates_across_groups(augmented, tmp_path):
    records = _lines(augmented)
    original = max(
        (r for r in records if "example_id" in r["metadata"]), key=lambda r: len(r["output"])
    )
    copy = {
        **original,
        "output": original["output"].rstrip(".") + " too.",  # one word more: a near copy
        "metadata": {"example_id": "elsewhere.md#0"},  # of another group
    }
    unlabelled = {key: value for key, value in copy.items() if key != "metadata"}
    unlabelled["output"] = original["output"].rstrip(".") + " as well."
    data = tmp_path / "with_copy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [*records, copy, unlabelled]))
    report = _check(data, tmp_path)
    assert report["filters"]["near_duplicate"]["flagged"] == 2
    assert report["filters"]["near_duplicate"]["first_records"] == [len(records), len(records) + 1]


def test_groups_survive_conversion(augmented, tmp_path):
    chat = tmp_path / "chat.jsonl"
    done = CliRunner().invoke(
        lfm, ["dataset", "convert", str(augmented), "--to", "sharegpt", "-o", str(chat)]
    )
    assert done.exit_code == 0, done.output
    assert _check(chat, tmp_path)["filters"]["near_duplicate"]["flagged"] == 0


def test_training_reads_the_group_metadata(augmented):
    pytest.importorskip("datasets")
    from lfm.runtime import formats
    from lfm.runtime.sources import _load_files

    records = _load_files([augmented])
    assert len(records) == len(_lines(augmented))
    for index, record in enumerate(records):
        assert isinstance(formats.parse_record(record, "alpaca", index), formats.Alpaca)
