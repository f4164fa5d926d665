"""Where the training data comes from."""

from __future__ import annotations

import re

from ..paths import config_relative, is_local
from ..resolve import Context

DEFAULT_DATASET = "./data/train.jsonl"
# The seed's RAG document store, where LlamaFarm keeps the documents it indexes.
DEFAULT_DOCUMENTS = "./rag/data/"
DOCUMENT_TYPES = ("rag_documents", "documents")


def dataset_source(ctx: Context) -> None:
    kind = ctx.get("dataset", "source", "type")
    if ctx.user_set("dataset", "source", "path"):
        return
    if kind in DOCUMENT_TYPES:
        ctx.decide(
            ("dataset", "source", "path"),
            DEFAULT_DOCUMENTS,
            "dataset_source",
            "document source without a path: the seed's RAG document folder",
        )
    elif kind == "hub":
        ctx.error(
            ("dataset", "source", "path"),
            "a hub dataset needs `path`: the dataset id",
            "e.g. path: tatsu-lab/alpaca",
        )
    else:
        ctx.decide(
            ("dataset", "source", "path"),
            DEFAULT_DATASET,
            "dataset_source",
            "no dataset path given; expects JSONL training data next to the config",
        )
        ctx.warn(
            ("dataset",),
            f"no dataset.source.path set; the script will read {DEFAULT_DATASET}",
            "set model_config.dataset.source.path",
        )


def document_sources_not_built(ctx: Context) -> None:
    kind = ctx.get("dataset", "source", "type")
    if kind in DOCUMENT_TYPES:
        ctx.warn(
            ("dataset", "source", "type"),
            f"dataset.source.type {kind}: this lfm version cannot build training data from "
            "documents yet, so train.py will stop with an error",
            "convert the documents to JSONL records and use type: local",
        )


_WINDOWS = re.compile(r"^[A-Za-z]:[\\/]|\\")


def portable_paths(ctx: Context) -> None:
    """Bundles run on Linux boxes: a Windows path would silently point nowhere."""
    for path in (
        ("base_model",),
        ("dataset", "source", "path"),
        ("fine_tuning", "training", "output_dir"),
    ):
        value = ctx.get(*path)
        if isinstance(value, str) and _WINDOWS.search(value):
            ctx.error(
                path,
                f"{value!r} is a Windows path",
                "write paths with forward slashes, relative to the config file",
            )


def local_paths_exist(ctx: Context) -> None:
    """Paths are used where the bundle runs, often elsewhere: a missing one is only a warning."""
    checks = [
        (("base_model",), ctx.get("base_model")),
        (("dataset", "source", "path"), ctx.get("dataset", "source", "path")),
    ]
    for path, value in checks:
        if path == ("dataset", "source", "path") and ctx.get("dataset", "source", "type") == "hub":
            continue
        if not isinstance(value, str):
            continue
        # A relative dataset path is always a path (it cannot be a hub id); base_model only by shape.
        if path[0] == "base_model" and not is_local(value):
            continue
        if not config_relative(value, ctx.config_dir).exists():
            ctx.warn(
                path,
                f"{value!r} does not exist here (it must exist where the bundle runs)",
                about_this_machine=True,
            )
