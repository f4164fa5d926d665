"""Evaluation: every eval_results.json under the runs folder; the fine-tuned model beside its
base, per score, the gates with pass or fail, and the settings and data it was scored on.

The shape is runtime/evaluation/results.py's (`evaluation_results`; a hybrid method's adapters
each in `adapters`). Beside it, `eval_examples.jsonl` holds each held-out question with the
reference and every model's answer: the first ``SHOWN_EXAMPLES`` of them are shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .files import MAX_PICTURE_BYTES, Unreadable, finite, ident, label, read_json, read_whole, scan
from .render import pretty
from .shapes import Shape, scalar, text
from .web import Problem, html, page, settings

CHART_FILE = "eval_comparison.png"  # lfm.runtime.evaluation.report.CHART_FILE
EXAMPLES_FILE = "eval_examples.jsonl"  # lfm.runtime.evaluation.results.EXAMPLES_FILE
MAX_EXAMPLES_BYTES = 8 << 20
SHOWN_EXAMPLES = 200


def evaluation_list(request: Request) -> Response:
    root = settings(request).runs
    rows = []
    for path in scan(root).evaluations:
        results, problem = _results(path)
        rows.append(
            {
                "id": ident(root, path),
                "label": label(root, path.parent),
                "results": _headline(results) if results is not None else None,
                "problem": problem,
            }
        )
    return html(request, "evaluations.html", "Evaluation", rows=rows, root=str(root))


def evaluation_detail(request: Request) -> Response:
    root = settings(request).runs
    path = _find(root, request.path_params["eval_id"])
    results, problem = _results(path)
    if results is None:
        raise Problem(422, problem or "unreadable evaluation results")
    shape = Shape(path.name)
    adapters = shape.mapping(results, "adapters")
    sections = adapters if adapters else {"": results}
    datasets = shape.items(results, "datasets")
    found = results.get("settings")
    return html(
        request,
        "evaluation.html",
        f"Evaluation {label(root, path.parent)}",
        label=label(root, path.parent),
        results=_headline(results),
        sections={
            str(name): _section(s, shape) for name, s in sections.items() if isinstance(s, dict)
        },
        datasets=[
            {
                "name": text(d.get("name")),
                "examples": text(d.get("examples")),
                "split": text(d.get("split")),
                "sha256": text(d.get("sha256"))[:16],
            }
            for d in datasets
            if isinstance(d, dict)
        ],
        settings_text=pretty(found) if found else "",
        problems=shape.problems,
        chart=_chart(path) is not None,
        eval_id=request.path_params["eval_id"],
        examples=_examples(path.parent / EXAMPLES_FILE, shape),
    )


def evaluation_chart(request: Request) -> Response:
    path = _chart(_find(settings(request).runs, request.path_params["eval_id"]))
    if path is None:
        raise Problem(404, "this evaluation has no chart")
    try:
        return Response(read_whole(path, MAX_PICTURE_BYTES), media_type="image/png")
    except Unreadable as exc:
        raise Problem(404, str(exc)) from None


def _examples(path: Path, shape: Shape) -> list[dict[str, Any]] | None:
    """The per-question answers as rows (None when the file is absent; a damaged line is a
    problem on the page, not an error)."""
    if not path.exists():
        return None
    try:
        lines = read_whole(path, MAX_EXAMPLES_BYTES).decode("utf-8", "replace").splitlines()
    except Unreadable as exc:
        shape.problems.append(str(exc))
        return None
    rows = []
    for number, line in enumerate(lines[:SHOWN_EXAMPLES], start=1):
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            shape.problems.append(f"{EXAMPLES_FILE} line {number}: not a JSON object")
            continue
        answers = row.get("answers")
        tuned = (
            [(str(n), text(a.get("answer")), scalar(a.get("f1")))
             for n, a in answers.items() if isinstance(a, dict)]
            if isinstance(answers, dict)
            else [("", text(row.get("answer")), scalar(row.get("f1")))]
        )  # fmt: skip
        rows.append(
            {
                "question": text(row.get("question")),
                "reference": text(row.get("reference")),
                "answers": tuned,
                "base": text(row.get("base_answer")) if "base_answer" in row else None,
                "base_f1": scalar(row.get("base_f1")),
            }
        )
    return rows


def _chart(results: Path) -> Path | None:
    path = results.parent / CHART_FILE
    return path if path.is_file() and not path.is_symlink() else None


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    passed = results.get("passed")
    return {
        "model_id": text(results.get("model_id")),
        "base_model": text(results.get("base_model")),
        "timestamp": text(results.get("timestamp")),
        "passed": passed if isinstance(passed, bool) else None,
    }


def _find(root: Path, eval_id: str) -> Path:
    for path in scan(root).evaluations:
        if ident(root, path) == eval_id:
            return path
    raise Problem(404, "no such evaluation under the runs folder")


def _results(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = read_json(path)
    except Unreadable as exc:
        return None, str(exc)
    inner = data.get("evaluation_results") if isinstance(data, dict) else None
    if not isinstance(inner, dict):
        return None, f"{path.name}: no evaluation_results object (not written by lfm evaluate?)"
    return finite(inner), None


def _section(section: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """One model's scores as rows (with which way is better), and its gates."""
    rows = []
    for name, score in shape.mapping(section, "scores").items():
        if not isinstance(score, dict):
            continue
        gain = score.get("gain")
        rows.append(
            {
                "name": str(name),
                "value": scalar(score.get("value")),
                "base": scalar(score.get("base")),
                "gain": scalar(gain),
                "higher": score.get("higher_is_better", True) is not False,
                "verdict": _verdict(gain),
            }
        )
    gates = [
        {
            "passed": g.get("passed") is True,
            "name": text(g.get("gate", g.get("name"))),
            "value": scalar(g.get("value")),
            "bound": scalar(g.get("bound")),
            "adapter": text(g.get("adapter")),
        }
        for g in shape.items(section, "gates")
        if isinstance(g, dict)
    ]
    return {"model_path": text(section.get("model_path")), "scores": rows, "gates": gates}


def _verdict(gain: Any) -> str:
    # gain is signed so that positive is better, whichever way the score points
    if not isinstance(gain, int | float) or isinstance(gain, bool):
        return ""
    return "better" if gain > 0 else "worse" if gain < 0 else "same"


ROUTES = [
    Route("/evaluations", page(evaluation_list), methods=["GET"]),
    Route("/evaluations/{eval_id}", page(evaluation_detail), methods=["GET"]),
    Route("/evaluations/{eval_id}/chart.png", page(evaluation_chart), methods=["GET"]),
]
