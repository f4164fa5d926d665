"""Turn one file into sections of plain text, or a reason it was skipped.

Each reader returns a list of :class:`Section`; a file that cannot be read (binary, encrypted,
corrupt, undecodable) raises :class:`Unreadable`, which the pipeline records in the report and
moves on: one bad file never stops a dataset.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lfm.runtime.inputs import InputRefused, TooLarge, read_bounded, regular_file_size

from .limits import MAX_DOCUMENT_BYTES
from .model import Section


class Unreadable(Exception):
    """This file is skipped; the message says why (it goes into the report)."""


TEXT_SUFFIXES = (".txt", ".text", ".rst")
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
RECORD_SUFFIXES = (".jsonl", ".json", ".csv")
# Fields that hold a record's body or title, in the order they are looked for.
BODY_KEYS = (
    "text", "content", "body", "page_content", "document", "abstract", "definition", "description",
)  # fmt: skip
TITLE_KEYS = ("title", "heading", "section", "name", "term")
_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def read_file(path: Path) -> list[Section]:
    """The sections of ``path``; raises :class:`Unreadable` when it must be skipped."""
    reader = _reader_for(path)
    with _refusals_as_unreadable():
        regular_file_size(path, MAX_DOCUMENT_BYTES, "a document")  # before any reader opens it
    sections = [s for s in reader(path) if s.text.strip()]
    if not sections:
        raise Unreadable("no text found")
    return sections


def supported(path: Path) -> bool:
    try:
        _reader_for(path)
    except Unreadable:
        return False
    return True


def _reader_for(path: Path) -> Callable[[Path], list[Section]]:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return read_text
    if suffix in MARKDOWN_SUFFIXES:
        return read_markdown
    if suffix in HTML_SUFFIXES:
        from .html_reader import read_html

        return read_html
    if suffix == ".pdf":
        from .pdf_reader import read_pdf

        return read_pdf
    if suffix == ".docx":
        from .docx_reader import read_docx

        return read_docx
    if suffix in RECORD_SUFFIXES:
        return read_records
    raise Unreadable(f"unsupported file type {suffix or '(no extension)'!r}")


def document_bytes(path: Path, limit: int = MAX_DOCUMENT_BYTES, what: str = "a document") -> bytes:
    """The bytes of a document, at most ``limit`` of them (``what`` names it in the reason)."""
    with _refusals_as_unreadable():
        return read_bounded(path, limit, what)


@contextmanager
def _refusals_as_unreadable() -> Iterator[None]:
    try:
        yield
    except TooLarge as why:
        raise Unreadable(f"too large: {why}") from None
    except InputRefused as why:
        raise Unreadable(str(why)) from None


def decode(data: bytes) -> str:
    """Text from bytes in UTF-8 or, failing that, the encoding charset-normalizer detects."""
    if b"\x00" in data[:8192]:
        raise Unreadable("binary file (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise Unreadable("could not detect the text encoding")
    best = matches[0]
    # Short Latin texts fit several code pages about equally well; among near-ties prefer
    # Windows-1252, by far the most common legacy encoding of Western documents.
    western = next((m for m in matches if m.encoding == "cp1252"), None)
    if western is not None and western.chaos - best.chaos <= 0.02:
        best = western
    return str(best)


def read_text(path: Path) -> list[Section]:
    return [Section(decode(document_bytes(path)))]


def read_markdown(path: Path) -> list[Section]:
    return split_headings(decode(document_bytes(path)))


def split_headings(text: str) -> list[Section]:
    """Sections of Markdown-style text, one per ATX heading (``#`` .. ``######``)."""
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced  # a `#` inside a code block is not a heading
        match = None if fenced else _ATX.match(line)
        if match:
            sections.append(Section("\n".join(lines).strip(), heading=heading))
            heading, lines = match.group(2).strip(), []
        else:
            lines.append(line)
    sections.append(Section("\n".join(lines).strip(), heading=heading))
    return [s for s in sections if s.text]


def read_records(path: Path) -> list[Section]:
    """One section per record of a .jsonl, .json (a list or {"data": [...]}) or .csv file."""
    text = decode(document_bytes(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows: list[object] = list(csv.DictReader(io.StringIO(text)))
    elif suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise Unreadable(f"line {number}: invalid JSON ({err.msg})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise Unreadable(f"line {err.lineno}: invalid JSON ({err.msg})") from None
        if isinstance(data, dict):
            data = data.get("data", [data])
        rows = data if isinstance(data, list) else [data]
    return [section for row in rows if (section := _record_section(row)) is not None]


def _record_section(row: object) -> Section | None:
    if isinstance(row, str):
        return Section(row)
    if not isinstance(row, dict):
        return None
    title = next((row[k] for k in TITLE_KEYS if isinstance(row.get(k), str)), None)
    body = next((row[k] for k in BODY_KEYS if isinstance(row.get(k), str)), None)
    if body is None:  # no known body field: every other string value, in order
        body = "\n\n".join(v for k, v in row.items() if isinstance(v, str) and v is not title)
    return Section(body, heading=title.strip() if title else None)
