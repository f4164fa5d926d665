"""Reading raw records: file kinds, directories, and errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lfm.runtime.data import DatasetSpec, load_records
from lfm.runtime.errors import RuntimeConfigError

ROWS = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]


def spec(path: str, source_type: str = "local") -> DatasetSpec:
    return DatasetSpec(
        source_type=source_type, path=path, format="auto", max_length=64, holdout_ratio=0.0
    )


def test_jsonl_relative_to_base_dir(tmp_path: Path, write_jsonl) -> None:
    write_jsonl(ROWS, "train.jsonl")
    records = load_records(spec("train.jsonl"), tmp_path)
    assert records["output"] == ["a0", "a1", "a2"]


@pytest.mark.parametrize("payload", [ROWS, {"data": ROWS}])
def test_json_list_and_wrapped_document(tmp_path: Path, payload: object) -> None:
    (tmp_path / "train.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    assert load_records(spec("train.json"), tmp_path)["instruction"] == ["q0", "q1", "q2"]


def test_csv(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("instruction,output\nq0,a0\nq1,a1\n", encoding="utf-8")
    assert len(load_records(spec("t.csv"), tmp_path)) == 2


def test_directory_reads_json_files_in_name_order(tmp_path: Path, write_jsonl) -> None:
    (tmp_path / "d").mkdir()
    write_jsonl(ROWS[1:], "d/b.jsonl")
    write_jsonl(ROWS[:1], "d/a.jsonl")
    (tmp_path / "d" / "notes.txt").write_text("ignored", encoding="utf-8")
    assert load_records(spec("./d"), tmp_path)["output"] == ["a0", "a1", "a2"]


def test_missing_file_names_resolved_path(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError, match=f"{tmp_path / 'nope.jsonl'} does not exist"):
        load_records(spec("nope.jsonl"), tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match=r"e\.jsonl is empty"):
        load_records(spec("e.jsonl"), tmp_path)


def test_empty_list_has_no_records(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text("[]", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match="contains no records"):
        load_records(spec("e.json"), tmp_path)


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    good = json.dumps(ROWS[0])
    (tmp_path / "bad.jsonl").write_text(f'{good}\n{good}\n{{"instruction": \n', encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match=r"bad\.jsonl:line 3: invalid JSON"):
        load_records(spec("bad.jsonl"), tmp_path)


def test_unsupported_suffix(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match=r"unsupported type '\.txt'"):
        load_records(spec("x.txt"), tmp_path)


@pytest.mark.parametrize("kind", ["rag_documents", "documents"])
def test_document_sources_need_an_existing_folder(kind: str, tmp_path: Path) -> None:
    pytest.importorskip("pypdf")  # document sources need the dataset extra
    with pytest.raises(RuntimeConfigError, match="docs does not exist"):
        load_records(spec("docs/", kind), tmp_path)


def test_a_document_source_needs_a_builder(tmp_path: Path) -> None:
    """The runtime never imports lfm.dataset: the script hands the builder over."""
    (tmp_path / "docs").mkdir()
    with pytest.raises(RuntimeConfigError, match=r"passes no builder.*recompile the bundle"):
        load_records(spec("docs/", "documents"), tmp_path)


def test_unreachable_hub_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeConfigError, match="could not load hub dataset 'someorg/none'"):
        load_records(spec("someorg/none", "hub"))
