"""Runs: training runs under the runs folder, each with live curves (the page polls
/api/runs/ID/steps), eval loss, alerts, and the resolved config with the reason for each value."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import runs
from .files import EVAL_FILE, ident, scan
from .web import Problem, api, html, page, settings


def run_list(request: Request) -> Response:
    root = settings(request).runs
    rows = [
        {
            "run": run,
            "status": runs.status(run),
            "last": runs.last_point(run),
            "alerts": len(runs.alerts(run)),
        }
        for run in runs.all_runs(root)
    ]
    return html(
        request, "runs.html", "Runs", rows=rows, root=str(root), truncated=scan(root).truncated
    )


def run_detail(request: Request) -> Response:
    root = settings(request).runs
    run = runs.find(root, request.path_params["run_id"])
    locked, lock_problem = runs.lock(run)
    evaluation = next(
        (p for p in scan(root).evaluations if p.parent in (run.output / "eval", run.output)), None
    )
    return html(
        request,
        "run.html",
        run.label,
        run=run,
        status=runs.status(run),
        summary=runs.summary(run),
        eval_losses=runs.eval_losses(run),
        alerts=runs.alerts(run),
        lock=locked,
        lock_problem=lock_problem,
        evaluation_id=ident(root, evaluation) if evaluation else None,
        eval_file=EVAL_FILE,
    )


def run_steps(request: Request) -> dict[str, Any]:
    run = runs.find(settings(request).runs, request.path_params["run_id"])
    try:
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        raise Problem(400, "offset must be a whole number of bytes") from None
    identity = request.query_params.get("file", "")[:100]  # what the last answer said
    answer = runs.read_steps(run, offset, identity)
    answer["status"] = runs.status(run)
    answer["eval"] = runs.eval_losses(run)
    return answer


ROUTES = [
    Route("/runs", page(run_list), methods=["GET"]),
    Route("/runs/{run_id}", page(run_detail), methods=["GET"]),
    Route("/api/runs/{run_id}/steps", api(run_steps), methods=["GET"]),
]
