"""PDF to one section per page with pypdf; encrypted and corrupt files are skipped."""

from __future__ import annotations

import logging
from pathlib import Path

from .limits import MAX_PDF_PAGES
from .model import Section
from .readers import Unreadable


def read_pdf(path: Path) -> list[Section]:
    # pypdf logs recoverable damage as warnings; a skipped file is reported once, in the report.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not _opens_without_password(reader):
            raise Unreadable("encrypted PDF (needs a password)")
        pages = len(reader.pages)  # from the page tree, before any page's text is extracted
        if pages > MAX_PDF_PAGES:
            raise Unreadable(f"too large: {pages} pages, over the {MAX_PDF_PAGES}-page limit")
        return [
            section
            for number, page in enumerate(reader.pages, start=1)
            for section in page_sections(page.extract_text() or "", number)
        ]
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Unreadable(f"corrupt PDF ({type(exc).__name__}: {str(exc)[:80]})") from None


def _opens_without_password(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:  # pypdf raises several types for unsupported encryption
        return False


def page_sections(text: str, page: int) -> list[Section]:
    """A page's text split at heading-like lines: short, no closing punctuation, followed by
    more text. PDF lines end at the margin, so the other lines of a paragraph are rejoined."""
    lines = [" ".join(line.split()) for line in text.replace("\r", "").split("\n")]
    sections: list[Section] = []
    heading: str | None = None
    paragraphs: list[list[str]] = [[]]
    for index, line in enumerate(lines):
        if not line:
            paragraphs.append([])
            continue
        follows = any(lines[index + 1 :])
        if len(line) < 60 and line[-1] not in ".,;:!?)\"'" and follows and line[0].isupper():
            sections.append(_section(paragraphs, page, heading))
            heading, paragraphs = line, [[]]
        else:
            paragraphs[-1].append(line)
    sections.append(_section(paragraphs, page, heading))
    return [s for s in sections if s.text]


def _section(paragraphs: list[list[str]], page: int, heading: str | None) -> Section:
    return Section("\n\n".join(" ".join(p) for p in paragraphs if p), page=page, heading=heading)
