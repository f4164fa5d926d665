"""Log in (an API key, once, into a session) and out."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .web import Problem, error_page, html, read_form, redirect, session, settings


async def login_form(request: Request) -> Response:
    keys = settings(request).keys.enabled
    target = _next(request.query_params.get("next"))
    return html(request, "login.html", "Log in", needs_token=keys, next=target)


async def login(request: Request) -> Response:
    try:
        fields = await read_form(request)
    except Problem as problem:
        return error_page(request, problem)
    target = _next(fields.get("next"))
    keys = settings(request).keys
    if not keys.enabled:
        return redirect(target)  # nothing to log in to: this machine's visitors are admin
    caller = keys.caller(fields.get("key", ""))
    if caller is None:
        return html(
            request,
            "login.html",
            "Log in",
            http_status=401,
            needs_token=True,
            next=target,
            error="unknown API key",
        )
    sessions = request.app.state.sessions
    sessions.drop(session(request))
    request.state.session = sessions.login(caller)
    return redirect(target)


async def logout(request: Request) -> Response:
    try:
        await read_form(request)
    except Problem as problem:
        return error_page(request, problem)
    sessions = request.app.state.sessions
    sessions.drop(session(request))
    request.state.session = sessions.visitor()  # and the cookie is deleted
    return redirect("/login")


def _next(value: str | None) -> str:
    """Where to go after logging in: a path on this site only. Never //host or a URL, and no
    whitespace or control character at all: browsers and urlsplit drop tabs and newlines, so
    "/\t/evil.example" would become "//evil.example"."""
    default = "/models"
    if not value or any(c.isspace() or unicodedata.category(c)[0] == "C" for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    if value.startswith("//") or parts.path.startswith("//") or "\\" in value:
        return default
    return value


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
