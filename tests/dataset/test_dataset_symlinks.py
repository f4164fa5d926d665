"""`lfm dataset create` makes no record from what a link points to outside the folder it was
given, and its report names every link it skipped (issue 17)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from hostile_links import LINKS, SECRET, plant_links
from lfm.cli import lfm

DOCS = Path(__file__).resolve().parent / "docs"


def create(*args: str):
    return CliRunner().invoke(lfm, ["dataset", "create", *args])


def test_links_out_of_the_folder_are_skipped_and_reported(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(DOCS / "guide.md", docs)
    plant_links(docs, tmp_path / "outside")
    (docs / "guide-link.md").symlink_to("guide.md")  # inside the folder, to a file there
    out = tmp_path / "out.jsonl"

    done = create("--source", str(docs), "-o", str(out), "--format", "completion")
    assert done.exit_code == 0, done.output
    assert SECRET not in out.read_text()
    for name in LINKS:
        assert f"warning: skipped {docs / name}: symbolic link to" in done.stderr
    assert f"{tmp_path / 'outside' / 'passwd'} (outside {docs})" in done.stderr
    report = json.loads((tmp_path / "out.report.json").read_text())
    skipped = {s["file"]: s["reason"] for s in report["documents"]["skipped"]}
    assert set(skipped) == set(LINKS)
    assert (
        skipped["passwd.txt"].startswith("symbolic link to") and "outside" in skipped["passwd.txt"]
    )
    assert report["documents"]["read"] == 2  # guide.md, and guide-link.md as that file
    assert "Traceback" not in done.output


def test_a_single_file_source_that_links_out_of_its_folder_is_not_read(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    plant_links(docs, tmp_path / "outside")
    out = tmp_path / "out.jsonl"
    done = create("--source", str(docs / "passwd.txt"), "-o", str(out), "--format", "completion")
    assert done.exit_code == 1 and not out.exists()
    assert "passwd.txt: symbolic link to" in done.output and "nothing was written" in done.output
    assert SECRET not in done.output and "Traceback" not in done.output
