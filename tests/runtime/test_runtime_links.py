"""The one rule for links in a folder lfm reads: followed only to a regular file inside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostile_links import SECRET, plant_links
from lfm.runtime import links
from lfm.runtime.data import DatasetSpec, load_records
from lfm.runtime.errors import RuntimeConfigError


def _names(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_only_links_to_a_file_inside_the_folder_are_followed(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    plant_links(folder, tmp_path / "outside")
    (folder / "to-b.txt").symlink_to("sub/b.txt")  # inside, to a file: that file
    (folder / "to-sub").symlink_to("sub", target_is_directory=True)  # inside, to a folder
    (folder / "hop.txt").symlink_to("passwd.txt")  # inside, then out: the end is what counts
    (folder / "loop-a").symlink_to("loop-b")
    (folder / "loop-b").symlink_to("loop-a")
    os.mkfifo(folder / "pipe")
    (folder / "to-pipe").symlink_to("pipe")

    found = links.folder_files(folder)
    assert _names(found.files, folder) == ["a.txt", "sub/b.txt", "to-b.txt"]
    why = {s.path.name: s.reason for s in found.skipped}
    outside = tmp_path / "outside"
    assert why == {
        "gone.txt": f"symbolic link to {folder / 'never-written.txt'}, which does not exist",
        "hop.txt": f"symbolic link to passwd.txt (outside {folder}): not followed",
        "loop-a": "symbolic link to loop-b, which does not exist",
        "loop-b": "symbolic link to loop-a, which does not exist",
        "passwd.txt": f"symbolic link to {outside / 'passwd'} (outside {folder}): not followed",
        "private": f"symbolic link to {outside / 'private'} (outside {folder}): not followed",
        "to-pipe": "symbolic link to pipe, which is not a regular file",
        "to-sub": "symbolic link to the folder sub: folders are not entered through links",
    }


def test_the_folder_named_may_itself_be_a_link(tmp_path: Path) -> None:
    (tmp_path / "run-7").mkdir()
    (tmp_path / "run-7" / "model.bin").write_bytes(b"w")
    (tmp_path / "run-7" / "alias.bin").symlink_to("model.bin")
    (tmp_path / "latest").symlink_to("run-7", target_is_directory=True)
    found = links.folder_files(tmp_path / "latest")
    assert _names(found.files, tmp_path / "latest") == ["alias.bin", "model.bin"]
    assert found.skipped == []


def test_left_out_entries_are_neither_entered_nor_reported(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    (tmp_path / ".env").symlink_to("/nonexistent/.env")
    (tmp_path / "kept.txt").write_text("k")
    found = links.folder_files(tmp_path, lambda relative, is_dir: relative.name.startswith("."))
    assert _names(found.files, tmp_path) == ["kept.txt"] and found.skipped == []


def test_a_file_named_alone_is_judged_by_the_folder_holding_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    plant_links(docs, tmp_path / "outside")
    (docs / "real.txt").write_text("r")
    (docs / "alias.txt").symlink_to("real.txt")
    assert links.link_problem(docs / "real.txt", docs) is None
    assert links.link_problem(docs / "alias.txt", docs) is None
    assert "(outside" in str(links.link_problem(docs / "passwd.txt", docs))


def test_warnings_name_the_link_and_where_it_points(tmp_path, capsys) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    plant_links(folder, tmp_path / "outside")
    links.warn(links.folder_files(folder).skipped)
    assert capsys.readouterr().err.splitlines() == [
        f"warning: skipped {folder / 'gone.txt'}: symbolic link to "
        f"{folder / 'never-written.txt'}, which does not exist",
        f"warning: skipped {folder / 'passwd.txt'}: symbolic link to "
        f"{tmp_path / 'outside' / 'passwd'} (outside {folder}): not followed",
        f"warning: skipped {folder / 'private'}: symbolic link to "
        f"{tmp_path / 'outside' / 'private'} (outside {folder}): not followed",
    ]


def _spec(path: str) -> DatasetSpec:
    return DatasetSpec(
        source_type="local", path=path, format="auto", max_length=64, holdout_ratio=0.0
    )


def test_a_training_data_folder_reads_no_record_through_a_link_out(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text(json.dumps({"text": "mine"}) + "\n")
    (tmp_path / "elsewhere.jsonl").write_text(json.dumps({"text": SECRET}) + "\n")
    (tmp_path / "data" / "b.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    assert load_records(_spec("data"), tmp_path)["text"] == ["mine"]
    with pytest.raises(RuntimeConfigError, match=r"b\.jsonl is a symbolic link to .*outside"):
        load_records(_spec("data/b.jsonl"), tmp_path)
