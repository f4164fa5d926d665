"""Rollouts: the registry's rollouts (running, a promoted blue-green keeping its old version
loaded, ended), and for a running one what the server given with `lfm ui --serve` measures of
each variant over the guard rails' window (GET /v1/rollouts: requests, errors, latency, ratings,
which variant is ahead).

With the operate role the page also ends them, as `lfm rollout` does: promote or abort a running
rollout, switch a promoted blue-green back or finish it. Each goes through a confirmation page
that names the rollout it was shown, so a rollout that ended or changed meanwhile is refused
(409) rather than acted on; the registry's audit log records it, the reason saying who clicked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lfm.registry import RegistryError, rollouts
from lfm.registry.references import check_env, check_name
from lfm.registry.rollouts import Rollout
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Caller
from .registry_view import opened
from .serving_page import server_scraper
from .web import Problem, action, flash, html, page, redirect, settings


@dataclass(frozen=True)
class Action:
    name: str  # as the form and the URL spell it
    running: bool  # it ends a running rollout (else: a promoted blue-green that keeps one)
    status: str | None  # the status it ends a running rollout with


ACTIONS = {
    "promote": Action("promote", True, rollouts.PROMOTED),
    "abort": Action("abort", True, rollouts.ABORTED),
    "switch-back": Action("switch-back", False, None),
    "finish": Action("finish", False, None),
}
SHOWN = 50  # the newest rollouts listed


def rollouts_page(request: Request) -> Response:
    with opened(settings(request)) as store:
        listed = rollouts.recent(store, SHOWN)
    running = [r for r in listed if r.status == rollouts.RUNNING]
    live: dict[int, dict[str, Any]] = {}
    live_error = None
    scraper = server_scraper(request)
    if scraper is not None and running:
        live, live_error = scraper.rollouts()
    return html(
        request,
        "rollouts.html",
        "Rollouts",
        running=running,
        kept=_kept(listed),
        ended=[r for r in listed if r.status != rollouts.RUNNING],
        live=live,
        live_error=live_error,
        serve_url=scraper.url if scraper else None,
    )


def confirm(request: Request) -> Response:
    """What the action will change, in words, with the one button that does it."""
    chosen, name, env = _checked(request.query_params)
    with opened(settings(request)) as store:
        store.get(name, with_files=False)  # an unknown name is its own error
        rollout = _current(store, chosen, name, env)
    if rollout is None:
        raise Problem(404, _nothing(chosen, name, env))
    return html(
        request,
        "confirm_rollout.html",
        f"Confirm {chosen.name}",
        action=chosen.name,
        rollout=rollout,
        needs_token=True,
    )


def act(request: Request, fields: dict[str, str], caller: Caller) -> Response:
    chosen, name, env = _checked(fields)
    shown = _rollout_id(fields.get("rollout", ""))
    note = " ".join(fields.get("reason", "").split())[:200]
    reason = f"lfm ui, {caller.who}" + (f": {note}" if note else "")
    try:
        with opened(settings(request)) as store:
            rollout = _current(store, chosen, name, env)
            if rollout is None or rollout.id != shown:
                raise Problem(
                    409,
                    f"rollout {shown} of {name}@{env} is not the one to {chosen.name} any more "
                    "(it ended or changed meanwhile): open the Rollouts page again",
                )
            message = _apply(store, chosen, rollout, reason)
    except Problem as problem:
        if problem.status == 409:
            raise
        flash(request, "error", problem.message)
    else:
        flash(request, "ok", message)
    return redirect("/rollouts")


def _apply(store: Any, chosen: Action, rollout: Rollout, reason: str) -> str:
    """Do ``chosen`` to ``rollout``; what happened, in words (a Problem when it was refused)."""
    where = f"{rollout.name}@{rollout.env}"
    if chosen.status is not None:
        ended = rollouts.end(store, rollout, chosen.status, reason)
        if ended is None:
            raise Problem(409, f"rollout {rollout.id} of {where} ended meanwhile")
        if ended.status != chosen.status:  # e.g. the environment was moved by hand meanwhile
            raise Problem(400, f"rollout {ended.id} {ended.status}: {ended.reason}")
        now = ended.candidate if ended.status == rollouts.PROMOTED else ended.stable
        return f"rollout {ended.id} {ended.status}: {where} -> {now}"
    if chosen.name == "switch-back":
        back = rollouts.switch_back(store, rollout.name, rollout.env, reason)
        return f"rollout {back.id} switched back: {where} -> {back.stable}"
    done = rollouts.finish(store, rollout.name, rollout.env, reason)
    return f"rollout {done.id} finished: {where} stays at {done.candidate}; {done.stable} unloads"


def _current(store: Any, chosen: Action, name: str, env: str) -> Rollout | None:
    """The rollout ``chosen`` applies to in NAME@ENV now, or None."""
    try:
        if chosen.running:
            return rollouts.running(store, name, env)
        return rollouts.keeping(store, name, env)
    except RegistryError as exc:
        raise Problem(400, str(exc)) from None


def _kept(listed: list[Rollout]) -> list[Rollout]:
    """Promoted blue-greens still keeping their old version: the newest rollout of its NAME@ENV
    (as `lfm rollout switch-back` finds it)."""
    newest: dict[tuple[str, str], Rollout] = {}
    for rollout in listed:  # newest first
        newest.setdefault((rollout.name, rollout.env), rollout)
    return [r for r in newest.values() if r.keeps_previous]


def _nothing(chosen: Action, name: str, env: str) -> str:
    if chosen.running:
        return f"no rollout of {name}@{env} is running"
    return f"no promoted blue-green rollout of {name}@{env} keeps an old version loaded"


def _checked(fields: Any) -> tuple[Action, str, str]:
    """A known action, a well-formed name and environment, before anything is opened."""
    chosen = ACTIONS.get(str(fields.get("action", "")))
    if chosen is None:
        raise Problem(400, f"the action must be one of {', '.join(ACTIONS)}")
    try:
        return (
            chosen,
            check_name(str(fields.get("name", ""))),
            check_env(str(fields.get("env", ""))),
        )
    except RegistryError as exc:
        raise Problem(400, str(exc)) from None


def _rollout_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise Problem(400, "the form lacks the rollout it confirmed: open the Rollouts page again")
    return int(text)


ROUTES = [
    Route("/rollouts", page(rollouts_page), methods=["GET"]),
    Route("/rollouts/confirm", page(confirm, role="operate"), methods=["GET"]),
    Route("/rollouts/act", action(act, role="operate"), methods=["POST"]),
]
