"""Datasets: each dataset `lfm dataset create` wrote under the datasets folder, with its report
(counts, skipped files and why, quality-control filters, metrics, gates), its length
histogram and its dataset card (dataset/report.py, dataset/card.py, dataset/publish.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .card import render_card
from .files import MAX_PICTURE_BYTES, Unreadable, finite, ident, label, read_json, read_whole, scan
from .shapes import Shape, scalar, text
from .web import Problem, html, page, settings

MAX_CARD_BYTES = 1 << 20


def dataset_list(request: Request) -> Response:
    root = settings(request).datasets
    rows = []
    for path in scan(root).reports:
        report, problem = _report(path)
        if report is None and problem is None:
            continue  # a *.report.json of something else
        view: dict[str, Any] | None = None
        if report is not None:
            found = _view(path, report)
            if found["problems"]:
                problem = "; ".join(found["problems"])
            else:
                view = found
        rows.append(
            {"id": ident(root, path), "label": _name(root, path), "view": view, "problem": problem}
        )
    return html(request, "datasets.html", "Datasets", rows=rows, root=str(root))


def dataset_detail(request: Request) -> Response:
    root = settings(request).datasets
    path = _find(root, request.path_params["dataset_id"])
    report, problem = _report(path)
    if report is None:
        raise Problem(422, problem or "not a dataset report")
    view = _view(path, report)
    if view["problems"]:
        raise Problem(422, "; ".join(view["problems"]))
    card = _sibling(path, "card")
    return html(
        request,
        "dataset.html",
        f"Dataset {_name(root, path)}",
        label=_name(root, path),
        report=view,
        # Markup: render_card's output is markdown-it's HTML with raw HTML and images turned
        # off (a `<script>` in the card arrives escaped, as text), or an escaped message.
        card=Markup(render_card(card, MAX_CARD_BYTES)) if card else None,
        histogram=_sibling(path, "histogram") is not None,
        dataset_id=request.path_params["dataset_id"],
    )


def dataset_histogram(request: Request) -> Response:
    path = _find(settings(request).datasets, request.path_params["dataset_id"])
    picture = _sibling(path, "histogram")
    if picture is None:
        raise Problem(404, "this dataset has no histogram")
    try:
        return Response(read_whole(picture, MAX_PICTURE_BYTES), media_type="image/png")
    except Unreadable as exc:
        raise Problem(404, str(exc)) from None


def _view(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """What the pages show of a report, every value checked for shape (``problems`` lists
    the fields that were not what dataset/report.py writes)."""
    shape = Shape(path.name)
    records = shape.mapping(report, "records")
    docs = shape.mapping(report, "documents")
    split = shape.mapping(report, "split")
    generator = shape.mapping(report, "generator")
    skipped = shape.items(docs, "skipped", "documents.")
    filters = shape.mapping(report, "filters")
    gates = shape.mapping(report, "gates")
    metrics = shape.mapping(report, "metrics")
    sources = shape.items(report, "sources")
    return {
        "problems": shape.problems,
        "format": text(report.get("format")),
        "sources": ", ".join(text(s) for s in sources),
        "generator": text(generator.get("backend")),
        "documents_read": scalar(docs.get("read")),
        "documents_found": scalar(docs.get("found")),
        "chunks": scalar(report.get("chunks")),
        "generated_pairs": scalar(report.get("generated_pairs")),
        "augmented_pairs": scalar(report.get("augmented_pairs")),
        "records_assessed": scalar(report.get("records_assessed")),
        "kept": scalar(records.get("kept")),
        "train": scalar(records.get("train")),
        "test": scalar(records.get("test")),
        "split": {k: text(split.get(k)) for k in ("by", "ratio", "seed")},
        "filters": [
            {"name": str(name), "removed": scalar(f.get("removed")), "why": text(f.get("why"))}
            for name, f in sorted(filters.items())
            if isinstance(f, dict)
        ],
        "metrics": [
            {"name": str(name), "nested": isinstance(value, dict | list), "value": value}
            for name, value in sorted(metrics.items())
        ],
        "gates": [
            {
                "name": str(name),
                "threshold": text(g.get("threshold")),
                "passed": g.get("passed") is True,
                "value": scalar(g.get("value")),
            }
            for name, g in sorted(gates.items())
            if isinstance(g, dict)
        ],
        "skipped": [
            {"file": text(s.get("file")), "reason": text(s.get("reason"))}
            for s in skipped
            if isinstance(s, dict)
        ],
    }


def _find(root: Path, dataset_id: str) -> Path:
    for path in scan(root).reports:
        if ident(root, path) == dataset_id:
            return path
    raise Problem(404, "no such dataset under the datasets folder")


def _report(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The report, (None, None) for a JSON file that is not one, (None, why) for a broken one."""
    try:
        data = read_json(path)
    except Unreadable as exc:
        return None, str(exc)
    if not isinstance(data, dict) or "report_version" not in data:
        return None, None
    return finite(data), None


def _sibling(report: Path, role: str) -> Path | None:
    """The card or histogram written with ``report`` (publish.py's two layouts)."""
    if report.name == "dataset_report.json":
        name = {"card": "README.md", "histogram": "length_histogram.png"}[role]
    else:
        stem = report.name.removesuffix(".report.json")
        name = {"card": f"{stem}.README.md", "histogram": f"{stem}.lengths.png"}[role]
    found = report.with_name(name)
    return found if found.is_file() and not found.is_symlink() else None


def _name(root: Path, report: Path) -> str:
    if report.name == "dataset_report.json":
        return label(root, report.parent)
    return label(root, report.with_name(report.name.removesuffix(".report.json")))


ROUTES = [
    Route("/datasets", page(dataset_list), methods=["GET"]),
    Route("/datasets/{dataset_id}", page(dataset_detail), methods=["GET"]),
    Route("/datasets/{dataset_id}/histogram.png", page(dataset_histogram), methods=["GET"]),
]
