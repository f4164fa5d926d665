"""Bounded documents and dataset files (issue 17, class 5): a .docx zip bomb, an oversized
document or HTML page and a PDF with too many pages are skipped with the reason in the report,
decided before the expensive step; JSON Lines lines and whole-JSON datasets are bounded; HTML is
read in one pass over its tree."""

from __future__ import annotations

import json
import re
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from lfm.dataset import DatasetError
from lfm.dataset.create import create
from lfm.dataset.jsonl import read_records
from lfm.dataset.limits import (
    MAX_DOCUMENT_BYTES,
    MAX_HTML_BYTES,
    MAX_JSON_DATASET_BYTES,
    MAX_JSONL_LINE_BYTES,
    MAX_PDF_PAGES,
)
from lfm.dataset.options import CreateOptions
from lfm.dataset.readers import Unreadable, read_file
from lfm.runtime.inputs import MiB

BOMB_BYTES = 300 * MiB  # what the bomb's document.xml unpacks to; it packs to about 300 KB
# The whole .docx unpacks to a little more: python-docx's template adds its own parts.
BOMB_REASON = r"too large: unpacks to 30\d(\.\d)? MiB, over the 128 MiB limit for a \.docx"


def _docx_with_body(path: Path, write_body, method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A real .docx (python-docx opens it) whose word/document.xml is replaced by write_body."""
    docx = pytest.importorskip("docx")
    plain = path.with_suffix(".plain.docx")
    docx.Document().save(str(plain))
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for part in src.infolist():
            if part.filename == "word/document.xml":
                info = zipfile.ZipInfo(part.filename)
                info.compress_type = method
                with out.open(info, "w", force_zip64=True) as body:
                    write_body(body)
            else:
                out.writestr(part, src.read(part.filename), compress_type=method)
    plain.unlink()
    return path


def _zip_bomb(path: Path) -> Path:
    def spaces(body) -> None:
        chunk = b" " * MiB
        for _ in range(BOMB_BYTES // MiB):
            body.write(chunk)

    return _docx_with_body(path, spaces)


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def test_a_docx_zip_bomb_is_skipped_before_unpacking(tmp_path):
    bomb = _zip_bomb(tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 2 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(Unreadable) as why:
            read_file(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert re.fullmatch(BOMB_REASON, str(why.value))
    assert peak < 5 * MiB  # the zip directory only: nothing was unpacked


def test_a_docx_zip_bomb_is_in_the_dataset_report(tmp_path, docs):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "guide.md").write_text((docs / "guide.md").read_text())
    _zip_bomb(corpus / "bomb.docx")
    report = create(CreateOptions(sources=(str(corpus),)), tmp_path / "out")
    skipped = {s["file"]: s["reason"] for s in report["documents"]["skipped"]}
    assert list(skipped) == ["bomb.docx"]
    assert re.fullmatch(BOMB_REASON, skipped["bomb.docx"])
    assert report["records"]["kept"] > 0  # the good document still made records


def test_a_docx_part_packed_too_tightly_is_skipped(tmp_path):
    bomb = _docx_with_body(tmp_path / "tight.docx", lambda body: body.write(b" " * (2 * MiB)))
    with pytest.raises(Unreadable, match=r"too large: 'word/document.xml' unpacks to \d+ times"):
        read_file(bomb)


def test_a_docx_part_word_never_writes_is_skipped(tmp_path):
    """bzip2 and LZMA parts unpack a whole read at once, past any declared size."""
    odd = _docx_with_body(
        tmp_path / "odd.docx", lambda body: body.write(b"<w:document/>"), zipfile.ZIP_BZIP2
    )
    with pytest.raises(Unreadable, match="compressed with zip method 12; Word stores or deflates"):
        read_file(odd)


def test_a_docx_within_the_limits_still_reads(docs):
    assert read_file(docs / "controller.docx")


def test_an_oversized_document_is_skipped_unread(tmp_path):
    big = _sparse(tmp_path / "big.txt", MAX_DOCUMENT_BYTES + 1)
    with pytest.raises(Unreadable) as why:
        read_file(big)
    assert str(why.value) == "too large: 64.1 MiB, over the 64 MiB limit for a document"


def test_an_oversized_html_page_is_skipped_unread(tmp_path):
    big = _sparse(tmp_path / "big.html", MAX_HTML_BYTES + 1)
    with pytest.raises(Unreadable) as why:
        read_file(big)
    assert str(why.value) == "too large: 8.1 MiB, over the 8 MiB limit for an HTML page"


def test_a_pdf_over_the_page_limit_is_skipped(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(MAX_PDF_PAGES + 1):
        writer.add_blank_page(72, 72)
    writer.write(tmp_path / "long.pdf")
    with pytest.raises(Unreadable) as why:
        read_file(tmp_path / "long.pdf")
    assert str(why.value) == "too large: 2001 pages, over the 2000-page limit"


def test_html_is_read_in_one_pass_over_the_tree(monkeypatch):
    """Editing the tree (decompose, insert_before, replace_with) looks each element up among
    its parent's children: quadratic on a page of many paragraphs (1 MB took 46 s)."""
    from bs4.element import Tag
    from lfm.dataset.html_reader import html_sections

    def scan(self, element):
        raise AssertionError("html_sections scanned a parent's children")

    monkeypatch.setattr(Tag, "index", scan)
    sections = html_sections(
        "<html><head><title>T</title><script>x()</script></head><body>"
        "<h1>Guide <span>one</span></h1><p>First.</p><p>Second<br>line.</p>"
        "<!-- note --><noscript>hidden</noscript><h2>Next</h2><div>Third.</div></body></html>"
    )
    assert [(s.heading, s.text) for s in sections] == [
        ("Guide one", "First.\n\nSecond\n\nline."),
        ("Next", "Third."),
    ]


def test_a_jsonl_line_over_the_limit_is_one_error(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "x" * MAX_JSONL_LINE_BYTES}) + "\n")
    with pytest.raises(DatasetError) as why:
        list(read_records(path))
    assert str(why.value) == (
        f"{path}:1: a line longer than 16 MiB; JSON Lines hold one record per line"
    )


def test_a_jsonl_file_streams_past_any_total(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"text": f"r{i}"}) + "\n" for i in range(1000)))
    assert sum(1 for _ in read_records(path)) == 1000


def test_a_json_dataset_over_the_limit_is_one_error(tmp_path):
    path = _sparse(tmp_path / "d.json", MAX_JSON_DATASET_BYTES + 1)
    with pytest.raises(DatasetError) as why:
        list(read_records(path))
    assert str(why.value) == (
        f"{path} is 256.1 MiB, over the 256 MiB limit for a JSON dataset; "
        "convert it to JSON Lines (.jsonl)"
    )


def test_a_fifo_dataset_is_refused_without_waiting(tmp_path):
    import os

    path = tmp_path / "d.jsonl"
    os.mkfifo(path)
    with pytest.raises(DatasetError, match=r"is a FIFO \(named pipe\), not a JSON Lines file"):
        list(read_records(path))
