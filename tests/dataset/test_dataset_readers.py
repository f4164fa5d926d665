"""Each reader on a real file; skipped files say why; a missing source is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from lfm.dataset import DatasetError
from lfm.dataset.discover import discover
from lfm.dataset.html_reader import html_sections
from lfm.dataset.readers import Unreadable, read_file

DOCS = Path(__file__).resolve().parent / "docs"


def _text(path: str) -> str:
    return "\n".join(s.text for s in read_file(DOCS / path))


def test_markdown_sections_follow_headings_not_code_comments():
    sections = read_file(DOCS / "guide.md")
    assert [s.heading for s in sections] == [
        "Orchard Sensor Network", "Installing a probe", "Calibration", "Batteries",
    ]  # fmt: skip
    assert "probe calibrate --all" in sections[2].text


def test_html_keeps_visible_text_and_drops_scripts_and_styles():
    sections = read_file(DOCS / "dashboard.html")
    text = "\n".join(s.text for s in sections)
    assert "shows moisture trends" in text and "Dry soil alerts" in text
    for hidden in ("tracking", "never in the text", "color: red"):
        assert hidden not in text
    assert [s.heading for s in sections if s.heading] == ["Dashboard", "Alerts"]


def test_html_paragraphs_do_not_run_together():
    sections = html_sections("<h1>T</h1><p>First one.</p><p>Second one.</p>")
    assert sections[0].text == "First one.\n\nSecond one."


def test_pdf_pages_and_headings():
    sections = read_file(DOCS / "manual.pdf")
    assert [(s.page, s.heading) for s in sections] == [(1, "Maintenance manual"), (2, "Storage")]
    assert sections[1].text.startswith("Winter storage is the practice")


def test_docx_headings():
    sections = read_file(DOCS / "controller.docx")
    assert [s.heading for s in sections] == ["Valve controller", "Wiring"]
    assert "twelve valves" in sections[1].text


def test_records_jsonl_and_csv_keep_titles():
    notes = read_file(DOCS / "notes.jsonl")
    assert [s.heading for s in notes] == ["Firmware updates", "Data export"]
    glossary = read_file(DOCS / "glossary.csv")
    assert glossary[0].text.startswith("Field capacity is")


def test_legacy_encoding_is_detected():
    assert "crème brûlée" in _text("legacy/cafe_schedule.txt")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("broken.pdf", "corrupt PDF"),
        ("locked.pdf", "encrypted PDF"),
        ("firmware.txt", "binary file"),
        ("photo.png", "unsupported file type"),
    ],
)
def test_unreadable_files_raise_with_a_reason(name, reason):
    with pytest.raises(Unreadable, match=reason):
        read_file(DOCS / name)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        discover([tmp_path / "nope"])


def test_discover_is_sorted_and_skips_hidden_files(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "c.md").write_text("c")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("x")
    assert [f.name for f in discover([tmp_path])] == ["a/c.md", "b.txt"]
