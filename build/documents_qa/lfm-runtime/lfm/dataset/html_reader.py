"""HTML to sections of visible text, split at headings, with BeautifulSoup (lxml parser)."""

from __future__ import annotations

from pathlib import Path

from .model import Section
from .readers import decode, split_headings

HIDDEN = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# Elements that end a paragraph: text on either side must not run together.
BLOCKS = (
    "p", "div", "li", "ul", "ol", "pre", "blockquote", "table", "tr", "section", "article",
    "header", "footer", "br", "dd", "dt", "figcaption", "main", "nav", "aside",
)  # fmt: skip


def read_html(path: Path) -> list[Section]:
    return html_sections(decode(path.read_bytes()))


def html_sections(markup: str) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup.find_all(HIDDEN):
        tag.decompose()
    for tag in soup.find_all(HEADINGS):
        level = int(tag.name[1])
        title = " ".join(tag.get_text(" ").split())
        # Headings become Markdown headings so one splitter serves both formats.
        tag.replace_with(f"\n\n{'#' * level} {title}\n\n" if title else "\n\n")
    for tag in soup.find_all(BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = soup.get_text()
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    # A paragraph that is a heading marker keeps its line; others are joined text.
    return split_headings("\n\n".join(p for p in paragraphs if p))
