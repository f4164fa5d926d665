"""Word .docx to sections split at Heading styles, with python-docx."""

from __future__ import annotations

from pathlib import Path

from .model import Section
from .readers import Unreadable


def read_docx(path: Path) -> list[Section]:
    try:
        import docx
    except ImportError:
        raise Unreadable("reading .docx needs python-docx: pip install 'lfm[dataset]'") from None
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zipfile, KeyError or its own errors
        raise Unreadable(f"corrupt .docx ({type(exc).__name__})") from None
    sections: list[Section] = []
    heading: str | None = None
    paragraphs: list[str] = []
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        text = paragraph.text.strip()
        if style.startswith("Heading") or style == "Title":
            sections.append(Section("\n\n".join(paragraphs), heading=heading))
            heading, paragraphs = text or heading, []
        elif text:
            paragraphs.append(text)
    sections.append(Section("\n\n".join(paragraphs), heading=heading))
    return [s for s in sections if s.text]
