"""HTML to sections of visible text, split at headings, with BeautifulSoup (lxml parser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .limits import MAX_HTML_BYTES
from .model import Section
from .readers import decode, document_bytes

HEADING_MARK = "\x00"  # opens a heading's paragraph (NUL is in no HTML text lxml yields)
HIDDEN = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# Elements that end a paragraph: text on either side must not run together.
BLOCKS = (
    "p", "div", "li", "ul", "ol", "pre", "blockquote", "table", "tr", "section", "article",
    "header", "footer", "br", "dd", "dt", "figcaption", "main", "nav", "aside",
)  # fmt: skip


def read_html(path: Path) -> list[Section]:
    return html_sections(decode(document_bytes(path, MAX_HTML_BYTES, "an HTML page")))


def html_sections(markup: str) -> list[Section]:
    """Sections split at the page's heading elements. Headings are marked with a character no
    page text holds, not with Markdown's ``#``: a ``# comment`` opening a ``<pre>`` block is
    code, not a heading."""
    from bs4 import BeautifulSoup

    text = "".join(_visible_text(BeautifulSoup(markup, "lxml")))
    sections: list[Section] = []
    heading: str | None = None
    paragraphs: list[str] = []
    for block in text.split("\n\n"):
        block = block.strip()
        if block.startswith(HEADING_MARK):
            sections.append(Section("\n\n".join(paragraphs), heading=heading))
            heading, paragraphs = block[1:].strip() or None, []
        elif words := " ".join(block.replace(HEADING_MARK, "").split()):
            paragraphs.append(words)
    sections.append(Section("\n\n".join(paragraphs), heading=heading))
    return [s for s in sections if s.text]


def _visible_text(root: Any, *, marked: bool = True) -> Iterator[str]:
    """The page's text as ``get_text()`` gives it, with hidden elements left out, headings
    turned into paragraphs opening with ``HEADING_MARK`` and a blank line around each block; ``marked=False``: the bare strings. One pass over the tree: editing the tree
    (``decompose``, ``insert_before``) scans the parent's children on every edit, which is
    quadratic on a long page (1 MB of paragraphs took 46 s)."""
    from bs4 import NavigableString

    shown = root.interesting_string_types  # text and CDATA; not comments or doctypes
    pending: list[Any] = [root]
    while pending:
        node = pending.pop()
        if type(node) is str:  # a separator pushed below
            yield node
        elif isinstance(node, NavigableString):
            if type(node) in shown:
                yield str(node)
        elif marked and node.name in HEADINGS:
            title = " ".join(" ".join(_visible_text(node, marked=False)).split())
            yield f"\n\n{HEADING_MARK}{title}\n\n" if title else "\n\n"
        elif node.name not in HIDDEN:
            around = ["\n\n"] if marked and node.name in BLOCKS else []
            pending += [*around, *reversed(node.contents), *around]
