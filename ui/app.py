"""The Starlette app: routes, sessions, and the headers every response carries."""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from lfm.runtime.endpoints import loopback_host
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import (
    datasets_page,
    evaluations_page,
    login,
    models_page,
    rollouts_page,
    runs_page,
    serving_page,
)
from .auth import LOCAL
from .sessions import COOKIE, LIFETIME_SECONDS, Sessions
from .settings import Settings
from .web import Problem, error_page, redirect

# No inline script or style anywhere: scripts and styles are the package's static files, so a
# value that escaped escaping still could not run. Forms post only here; no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser posts forms with `Origin: null`,
    # which the cross-site check below must refuse.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(settings: Settings) -> Starlette:
    sessions = Sessions(None if settings.keys.enabled else LOCAL)
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(SessionMiddleware, sessions=sessions, settings=settings)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.settings = settings
    app.state.sessions = sessions
    return app


def _routes() -> list[BaseRoute]:
    static = resources.files("lfm.ui") / "static"
    return [
        Route("/", lambda request: redirect("/models"), methods=["GET"]),
        *login.ROUTES,
        *models_page.ROUTES,
        *runs_page.ROUTES,
        *evaluations_page.ROUTES,
        *datasets_page.ROUTES,
        *serving_page.ROUTES,
        *rollouts_page.ROUTES,
        Route("/health", lambda request: PlainTextResponse("ok"), methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]


class SessionMiddleware(BaseHTTPMiddleware):
    """Refuse other host names when keyless, attach the visitor's session, refuse cross-site
    posts, and add the security headers."""

    def __init__(self, app: object, sessions: Sessions, settings: Settings) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.sessions = sessions
        self.settings = settings

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not self.settings.keys.enabled and not loopback_host(_host_name(request)):
            # Without keys every visitor is admin, so only this machine may call, by name too:
            # a page elsewhere cannot reach the UI through DNS rebinding (another name for
            # 127.0.0.1). The same names as `lfm ui --host` accepts without keys.
            return _secured(request, PlainTextResponse("Invalid host header", status_code=400))
        if request.url.path == "/health" or request.url.path.startswith("/static/"):
            return _secured(request, await call_next(request))  # no session, none stored
        found = self.sessions.find(request.cookies.get(COOKIE))
        request.state.session = found or self.sessions.visitor()
        if request.method not in ("GET", "HEAD") and not _same_origin(request, self.settings):
            # SameSite=Strict already keeps the cookie off cross-site posts; this refuses them
            # outright, before any handler reads a form.
            response = error_page(request, Problem(403, "cross-site request refused"))
        else:
            response = await call_next(request)
        chosen = request.state.session  # login and logout replace it; a form page keeps it
        if chosen.stored and chosen is not found:
            response.set_cookie(
                COOKIE,
                chosen.id,
                max_age=LIFETIME_SECONDS,
                path="/",
                httponly=True,
                samesite="strict",
                secure=_https(request, self.settings),
            )
        elif found is not None and not chosen.stored:  # logged out
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return _secured(request, response)


def _secured(request: Request, response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"  # pages show live, role-gated data
    return response


def _host_name(request: Request) -> str:
    try:
        return urlsplit("//" + request.headers.get("host", "")).hostname or ""
    except ValueError:
        return ""


def _same_origin(request: Request, settings: Settings) -> bool:
    """The Origin a browser sent names this site: as the Host header says, or as
    ``--public-origin`` says (behind a proxy that rewrites Host)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-origin post (browsers send Origin on POST)
        return True
    if settings.public_origin and _origin(origin) == _origin(settings.public_origin):
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _https(request: Request, settings: Settings) -> bool:
    public = settings.public_origin or ""
    return request.url.scheme == "https" or public.lower().startswith("https://")


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = "no such page" if status == 404 else str(getattr(exc, "detail", "error"))
    if getattr(request.state, "session", None) is None:
        return PlainTextResponse(detail, status_code=status)
    return error_page(request, Problem(status, detail))
