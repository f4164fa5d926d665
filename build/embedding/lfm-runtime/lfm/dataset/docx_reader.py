"""Word .docx to sections split at Heading styles, with python-docx."""

from __future__ import annotations

import zipfile
from pathlib import Path

from lfm.runtime.inputs import size_text

from .limits import DOCX_RATIO_CHECKED_FROM, MAX_DOCX_COMPRESSION_RATIO, MAX_DOCX_UNPACKED_BYTES
from .model import Section
from .readers import Unreadable


def read_docx(path: Path) -> list[Section]:
    try:
        import docx
    except ImportError:
        raise Unreadable("reading .docx needs python-docx: pip install 'lfm[dataset]'") from None
    _refuse_zip_bomb(path)
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


_WORD_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _refuse_zip_bomb(path: Path) -> None:
    """Skip a .docx that would unpack to too much, judged from its zip directory alone: nothing
    is unpacked here. Python's zipfile inflates no part past the size the directory declares, but
    bzip2 and LZMA parts are unpacked a whole read at a time, so only Word's own methods pass."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise Unreadable(f"corrupt .docx ({type(exc).__name__})") from None
    unusual = next((p for p in parts if p.compress_type not in _WORD_METHODS), None)
    if unusual is not None:
        raise Unreadable(
            f"corrupt .docx ({unusual.filename!r} is compressed with zip method "
            f"{unusual.compress_type}; Word stores or deflates)"
        )
    unpacked = sum(part.file_size for part in parts)
    if unpacked > MAX_DOCX_UNPACKED_BYTES:
        raise Unreadable(
            f"too large: unpacks to {size_text(unpacked)}, over the "
            f"{size_text(MAX_DOCX_UNPACKED_BYTES)} limit for a .docx"
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size >= DOCX_RATIO_CHECKED_FROM and ratio > MAX_DOCX_COMPRESSION_RATIO:
            raise Unreadable(
                f"too large: {part.filename!r} unpacks to {ratio:.0f} times its packed size, "
                f"over the limit of {MAX_DOCX_COMPRESSION_RATIO} (a zip bomb?)"
            )
