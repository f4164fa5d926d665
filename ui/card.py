"""A dataset card (Markdown) as HTML that cannot carry markup of its own.

markdown-it with raw HTML off: a `<script>` or `<img onerror>` in a card (its examples are
generated from documents anyone may have written) is shown as text. Links keep markdown-it's
check (no `javascript:` or `data:` URLs); images are dropped, since the page shows the
histogram itself and a card's image could point anywhere. The YAML front matter (Hugging Face
metadata) is not shown.
"""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt
from markupsafe import escape

from .files import Unreadable, read_whole


def render_card(path: Path, limit: int) -> str:
    """The card as HTML safe to insert as it is (see the module's docstring)."""
    try:
        text = read_whole(path, limit).decode("utf-8", errors="replace")
    except Unreadable as exc:
        return str(escape(f"{exc}: not shown."))
    return _markdown().render(_without_front_matter(text))


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    md.disable("image")
    return md


def _without_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[end + 5 :]
    return text
