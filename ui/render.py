"""Jinja2 for the pages: autoescape on every template, undefined names are errors.

Everything a page shows may come from someone else (a model's tags, a run's folder name, a
dataset card), so values reach the HTML escaped, and the Content-Security-Policy (see app.py)
refuses inline script should anything slip through. One value is marked safe (Markup), in
datasets_page.py: the dataset card, because it is HTML that card.py made from the card's
Markdown with markdown-it's raw HTML and images turned off (a `<script>` or `<img>` in the card
comes out escaped, as text; links keep markdown-it's URL check), or an escaped message. Nothing
else is; a test posts hostile markup through the card and every other page.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from typing import Any

import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    folder = resources.files("lfm.ui") / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    env.filters["signed"] = signed
    env.filters["pretty"] = pretty
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def number(value: Any) -> str:
    """A figure for a table: 4 significant digits, or the value as text when not a number."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def signed(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:+.4g}"
    return number(value)


def pretty(value: Any) -> str:
    """A nested value (a config, method parameters) as indented JSON text (escaped later)."""
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)
