"""Serving: a running `lfm serve` (given with `lfm ui --serve URL`): what is loaded, and per
model the requests, their rate, latency and tokens. The table refreshes itself every few
seconds (static/serving.js polls /api/serving)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .serving_status import Scraper
from .web import api, html, page, settings


def serving(request: Request) -> Response:
    scraper = _scraper(request)
    status = scraper.status() if scraper else None
    return html(request, "serving.html", "Serving", status=status)


def serving_json(request: Request) -> dict[str, Any]:
    scraper = _scraper(request)
    return scraper.status() if scraper else {"url": None, "error": "no server given"}


def _scraper(request: Request) -> Scraper | None:
    found = settings(request)
    if not found.serve_url:
        return None
    state = request.app.state
    if getattr(state, "scraper", None) is None:
        state.scraper = Scraper(found.serve_url, found.serve_key)
    scraper: Scraper = state.scraper
    return scraper


ROUTES = [
    Route("/serving", page(serving), methods=["GET"]),
    Route("/api/serving", api(serving_json), methods=["GET"]),
]
