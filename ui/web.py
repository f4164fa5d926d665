"""How a request becomes a page: who is asking, what they may do, forms and their CSRF token.

Three kinds of route, each wrapped here: a page (GET, HTML; without a session a visitor with
keys configured goes to the login form), an action (POST from a form: the session's CSRF token
first, then the role), and a JSON read for the live parts of a page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .auth import Caller
from .files import finite
from .render import render
from .sessions import Session
from .settings import Settings

MAX_FORM_BYTES = 64 << 10
NAV = (
    ("/models", "Models"),
    ("/runs", "Runs"),
    ("/evaluations", "Evaluation"),
    ("/datasets", "Datasets"),
    ("/serving", "Serving"),
    ("/rollouts", "Rollouts"),
)


class Problem(Exception):
    """A request the UI answers with an error page (or JSON error) and this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


def session(request: Request) -> Session:
    found: Session = request.state.session
    return found


def flash(request: Request, level: str, message: str) -> None:
    session(request).flash.append((level, message))


def html(
    request: Request,
    template: str,
    title: str,
    http_status: int = 200,
    needs_token: bool = False,
    **context: Any,
) -> Response:
    """A page. ``needs_token``: it shows a form to post (with the CSRF token), so a visitor's
    session is stored from now on; other pages store nothing for a visitor without one."""
    current = session(request)
    if needs_token:
        request.app.state.sessions.keep(current)
    messages, current.flash = current.flash, []
    body = render(
        template,
        title=title,
        nav=NAV,
        path=request.url.path,
        caller=current.caller,
        keys_enabled=settings(request).keys.enabled,
        csrf=current.csrf if current.stored else "",
        messages=messages,
        **context,
    )
    return HTMLResponse(body, status_code=http_status)


def error_page(request: Request, problem: Problem) -> Response:
    return html(request, "error.html", "Error", http_status=problem.status, message=problem.message)


def to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=303)


def page(handler: Callable[[Request], Response], role: str = "read") -> Callable[..., Any]:
    """A GET page; ``handler`` is synchronous (it reads files and the registry) and runs in a
    worker thread."""

    async def endpoint(request: Request) -> Response:
        caller = session(request).caller
        if caller is None:
            return to_login(request)
        try:
            _require(caller, role)
            return await run_in_threadpool(handler, request)
        except Problem as problem:
            return error_page(request, problem)

    return endpoint


def action(
    handler: Callable[[Request, dict[str, str], Caller], Response], role: str
) -> Callable[..., Any]:
    """A POST from a form: the CSRF token is checked before anything else, then the role."""

    async def endpoint(request: Request) -> Response:
        try:
            fields = await read_form(request)
            caller = session(request).caller
            if caller is None:
                raise Problem(401, "log in with an API key first")
            _require(caller, role)
            return await run_in_threadpool(handler, request, fields, caller)
        except Problem as problem:
            return error_page(request, problem)

    return endpoint


def api(handler: Callable[[Request], Any], role: str = "read") -> Callable[..., Any]:
    """A JSON read (the live charts poll these)."""

    async def endpoint(request: Request) -> Response:
        caller = session(request).caller
        try:
            if caller is None:
                raise Problem(401, "log in with an API key first")
            _require(caller, role)
            # NaN and infinities as null: a browser's JSON has none (and JSONResponse refuses
            # them), whatever a run's file or a scraped server said.
            return JSONResponse(finite(await run_in_threadpool(handler, request)))
        except Problem as problem:
            return JSONResponse({"error": problem.message}, status_code=problem.status)

    return endpoint


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form of bounded size whose ``csrf`` field is this session's token."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Problem(415, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_FORM_BYTES:
            raise Problem(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "the form is not valid UTF-8 urlencoded text") from None
    if not session(request).check_csrf(fields.get("csrf")):
        raise Problem(
            403,
            "this form's security token is missing or out of date: reload the page and try again",
        )
    return fields


def _require(caller: Caller, role: str) -> None:
    if not caller.may(role):
        raise Problem(403, f"this key's role is {caller.role}; this needs {role}")
