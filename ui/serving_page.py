"""Serving: a running `lfm serve` (given with `lfm ui --serve URL`): what is loaded, and per
model the requests, their rate, latency and tokens. The table refreshes itself every few
seconds (static/serving.js polls /api/serving).

With the operate role and a registry, the page also swaps: a registered adapter version (or an
environment, which the server then follows) is loaded into the server under a name, replacing
what is loaded there, after a confirmation page that says what will change."""

from __future__ import annotations

from typing import Any

from lfm.registry import RegistryError, parse_reference
from lfm.registry.references import check_name
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Caller
from .registry_view import missing_registry, opened
from .serving_status import Scraper, ServerRefused
from .web import Problem, action, api, flash, html, page, redirect, session, settings


def serving(request: Request) -> Response:
    scraper = server_scraper(request)
    status = scraper.status() if scraper else None
    caller = session(request).caller
    choices = []
    if status and caller and caller.may("operate"):
        try:
            choices = _choices(request)
        except Problem as problem:  # the registry's trouble is the Models page's to show
            flash(request, "error", f"registry: {problem.message}")
    return html(
        request,
        "serving.html",
        "Serving",
        status=status,
        choices=choices,
        adapters=[m["id"] for m in status["models"] if m["parent"]] if status else [],
    )


def serving_json(request: Request) -> dict[str, Any]:
    scraper = server_scraper(request)
    return scraper.status() if scraper else {"url": None, "error": "no server given"}


def confirm_load(request: Request) -> Response:
    """What a load will change on the server, in words, with the one button that does it."""
    scraper = _needs_scraper(request)
    reference, name = _checked(request.query_params)
    if reference not in _choices(request):
        raise Problem(404, f"{reference} is not in the registry")
    status = scraper.status()
    if status["error"]:
        raise Problem(502, f"the server does not answer: {status['error']}")
    current = next((m for m in status["models"] if m["id"] == name), None)
    if current is not None and not current["parent"]:
        raise Problem(400, f"{name!r} is the server's base model, not an adapter")
    return html(
        request,
        "confirm_load.html",
        "Confirm load",
        url=scraper.url,
        reference=reference,
        name=name,
        current=current,
        needs_token=True,
    )


def load(request: Request, fields: dict[str, str], caller: Caller) -> Response:
    scraper = _needs_scraper(request)
    reference, name = _checked(fields)
    try:
        answer = scraper.load(name, reference)
    except ServerRefused as exc:
        flash(request, "error", f"the server did not load {reference} as {name}: {exc}")
    else:
        flash(request, "ok", f"{name} <- {reference}: {answer}")
    return redirect("/serving")


def _checked(fields: Any) -> tuple[str, str]:
    """A registry reference (NAME:VERSION or NAME@ENV) and the name to serve it as (default:
    the registered name), both well-formed before anything is asked."""
    text = str(fields.get("reference", "")).strip()
    try:
        parsed = parse_reference(text)
        if parsed.version is None and parsed.env is None:
            raise RegistryError("choose a version (NAME:1.2.0) or an environment (NAME@production)")
        name = check_name(str(fields.get("name", "")).strip() or parsed.name)
    except RegistryError as exc:
        raise Problem(400, str(exc)) from None
    return text, name


def _choices(request: Request) -> list[str]:
    """Every registered adapter version and every environment an adapter is promoted to, as
    the references the server resolves; none without a registry."""
    found = settings(request)
    try:
        if missing_registry(found):
            return []
    except RegistryError:
        return []
    with opened(found) as store:
        records = [r for r in store.list_versions() if r.type == "adapter"]
    environments = sorted({f"{r.name}@{env}" for r in records for env in r.environments})
    return [f"{r.name}:{r.version}" for r in records[::-1]] + environments


def _needs_scraper(request: Request) -> Scraper:
    scraper = server_scraper(request)
    if scraper is None:
        raise Problem(400, "no server given: start the UI with --serve URL")
    return scraper


def server_scraper(request: Request) -> Scraper | None:
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
    Route("/serving/confirm", page(confirm_load, role="operate"), methods=["GET"]),
    Route("/serving/load", action(load, role="operate"), methods=["POST"]),
]
