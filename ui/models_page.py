"""Models: every registered model and adapter, its versions, lineage and environments, and the
promote and rollback actions (operate role), each confirmed on a page that says what moves."""

from __future__ import annotations

from lfm.registry import RegistryError
from lfm.registry.references import check_env, check_name, check_version
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import Caller
from .registry_view import HEADLINE, detail, opened, overview
from .web import Problem, action, flash, html, page, redirect, settings


def models(request: Request) -> Response:
    with opened(settings(request)) as store:
        summaries = overview(store)
        location = store.location
        environments = store.environments
    return html(
        request,
        "models.html",
        "Models",
        models=summaries,
        location=location,
        environments=environments,
    )


def model(request: Request) -> Response:
    with opened(settings(request)) as store:
        found = detail(store, request.path_params["name"])
    return html(request, "model.html", found.name, model=found, headline=HEADLINE)


def confirm(request: Request) -> Response:
    """What a promote or rollback will do, in words, with the one button that does it."""
    query = request.query_params
    kind = query.get("action", "")
    if kind not in ("promote", "rollback"):
        raise Problem(400, "action must be promote or rollback")
    env, version = _checked(
        query.get("env", ""), query.get("version", ""), request.path_params["name"]
    )
    with opened(settings(request)) as store:
        found = detail(store, request.path_params["name"])
    state = next((e for e in found.environments if e.name == env), None)
    if state is None:
        raise Problem(400, f"unknown environment {env!r}")
    target = version or (state.rollback_to if kind == "rollback" else None)
    if target is None:
        raise Problem(
            400,
            "choose a version to promote"
            if kind == "promote"
            else f"{found.name}@{env} has no earlier version to roll back to",
        )
    if target not in {v.version for v in found.versions}:
        raise Problem(404, f"{found.name} has no version {target}")
    if kind == "rollback" and state.current is None:
        raise Problem(400, f"{found.name}@{env} points at no version yet: nothing to roll back")
    return html(
        request,
        "confirm.html",
        f"Confirm {kind}",
        model=found,
        kind=kind,
        env=state,
        target=target,
        named=bool(version),
        needs_token=True,
    )


def promote(request: Request, fields: dict[str, str], caller: Caller) -> Response:
    name = request.path_params["name"]
    env, version = _checked(fields.get("env", ""), fields.get("version", ""), name)
    reason = " ".join(fields.get("reason", "").split())[:200]
    try:
        with opened(settings(request)) as store:
            move = store.promote(
                f"{name}:{version}",
                env,
                require_gates=fields.get("require_gates") == "on",
                reason=f"lfm ui, {caller.who}" + (f": {reason}" if reason else ""),
            )
    except Problem as problem:
        flash(request, "error", problem.message)
    else:
        if move is None:
            flash(request, "info", f"{name}@{env} already points at {version}")
        else:
            was = f" (was {move.from_version})" if move.from_version else ""
            flash(request, "ok", f"{name}@{env} -> {move.to_version}{was}")
    return redirect(f"/models/{name}")


def rollback(request: Request, fields: dict[str, str], caller: Caller) -> Response:
    """The rollback the confirmation page showed: from ``expected`` to ``target``, or nothing
    (a second click, or another operator's move in between, is refused with a 409 page)."""
    name = request.path_params["name"]
    env, version = _checked(fields.get("env", ""), fields.get("version", ""), name)
    expected, target = _version_field(fields, "expected"), _version_field(fields, "target")
    if not expected or not target:
        raise Problem(400, "the form lacks the versions it confirmed: open the rollback again")
    try:
        with opened(settings(request)) as store:
            # The move records who runs the UI; its reason (kept in the history and the audit
            # entry, in the same transaction) says who clicked.
            move = store.rollback(
                name,
                env,
                version or None,
                expected=expected,
                expected_target=target,
                reason=f"lfm ui, {caller.who}",
            )
    except Problem as problem:
        if problem.status == 409:
            raise
        flash(request, "error", problem.message)
    else:
        flash(
            request,
            "ok",
            f"{name}@{env} -> {move.to_version} (rolled back from {move.from_version})",
        )
    return redirect(f"/models/{name}")


def _version_field(fields: dict[str, str], key: str) -> str:
    try:
        return check_version(fields[key]) if fields.get(key) else ""
    except RegistryError as exc:
        raise Problem(400, f"{key}: {exc}") from None


def _checked(env: str, version: str, name: str) -> tuple[str, str]:
    """A well-formed name, environment and (optional) version, before anything is opened."""
    try:
        check_name(name)
        return check_env(env), (check_version(version) if version else "")
    except RegistryError as exc:
        raise Problem(400, str(exc)) from None


ROUTES = [
    Route("/models", page(models), methods=["GET"]),
    Route("/models/{name}", page(model), methods=["GET"]),
    Route("/models/{name}/confirm", page(confirm, role="operate"), methods=["GET"]),
    Route("/models/{name}/promote", action(promote, role="operate"), methods=["POST"]),
    Route("/models/{name}/rollback", action(rollback, role="operate"), methods=["POST"]),
]
