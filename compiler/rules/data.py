"""Where the training data comes from."""

from __future__ import annotations

import re

from lfm.runtime.endpoints import loopback

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


# Dataset settings that only shape a dataset built from documents.
DOCUMENT_SETTINGS = (
    ("dataset", "quality_control"),
    ("dataset", "augmentation"),
    ("dataset", "preprocessing", "qa_generation"),
    ("dataset", "preprocessing", "chunk_size"),
    ("dataset", "preprocessing", "chunk_overlap"),
    ("dataset", "validation", "quality_threshold"),
)


def document_dataset(ctx: Context) -> None:
    """A document source is built into Q&A records before training (lfm.dataset)."""
    kind = ctx.get("dataset", "source", "type")
    if kind not in DOCUMENT_TYPES:
        for path in DOCUMENT_SETTINGS:
            if ctx.user_set(*path):
                ctx.warn(
                    path,
                    f"{'.'.join(path)} shapes datasets built from documents; this {kind} "
                    "dataset is used as it is",
                    "use it with dataset.source.type: documents, or with `lfm dataset create "
                    "--config` / `lfm dataset check --config`",
                )
        return
    if ctx.get("dataset", "preprocessing", "format") == "auto":
        ctx.decide(
            ("dataset", "preprocessing", "format"),
            "alpaca",
            "document_dataset",
            "documents become question/answer pairs, written as alpaca records",
        )
    size = ctx.get("dataset", "preprocessing", "chunk_size")
    overlap = ctx.get("dataset", "preprocessing", "chunk_overlap")
    if isinstance(size, int) and isinstance(overlap, int) and overlap * 2 >= size:
        ctx.error(
            ("dataset", "preprocessing", "chunk_overlap"),
            f"chunk_overlap {overlap} should be less than half of chunk_size {size}",
            f"e.g. chunk_overlap: {size // 8}",
        )
    qa = ctx.get("dataset", "preprocessing", "qa_generation") or {}
    backend = qa.get("backend")
    if backend == "openai" and not qa.get("base_url"):
        ctx.error(
            ("dataset", "preprocessing", "qa_generation", "base_url"),
            "the openai generator needs base_url",
            "e.g. base_url: https://api.openai.com/v1 (and api_key_env: OPENAI_API_KEY)",
        )
    if backend in ("openai", "transformers") and qa.get("model", "offline") == "offline":
        ctx.error(
            ("dataset", "preprocessing", "qa_generation", "model"),
            f"the {backend} generator needs a model name, not 'offline'",
        )
    if qa.get("base_url") and not qa.get("api_key_env") and not loopback(qa["base_url"]):
        ctx.warn(
            ("dataset", "preprocessing", "qa_generation", "api_key_env"),
            "no api_key_env: requests to the endpoint carry no API key",
            "name the environment variable that holds the key, e.g. api_key_env: OPENAI_API_KEY",
        )


_WINDOWS = re.compile(r"^[A-Za-z]:[\\/]|\\")


# What a .gitignore or .dockerignore line would read as something else: a comment (#), an
# exception (!), a pattern (* ? [ ] \), or blanks that git strips.
_IGNORE_SPECIAL = re.compile(r"(^|/)[#!]|[*?\[\]]|^\s|\s$|[\x00-\x1f\x7f]")


def output_dir_in_ignore_files(ctx: Context) -> None:
    """The bundle's .gitignore and .dockerignore name the output folder: it must read as itself."""
    path = ("fine_tuning", "training", "output_dir")
    value = ctx.get(*path)
    if isinstance(value, str) and _IGNORE_SPECIAL.search(value):
        ctx.error(
            path,
            f"output_dir {value!r} would be misread in the bundle's .gitignore and .dockerignore "
            "(as a comment, an exception or a pattern), so the output could be committed or "
            "copied into the image",
            "use letters, digits, '.', '_', '-' and '/', e.g. output_dir: ./output",
        )


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


def local_paths_in_image(ctx: Context) -> None:
    """A training image (Dockerfile, the Kubernetes Job) holds the bundle alone: a base model
    or dataset read from this machine's disk is not in it, and the job would fail at its first
    read. Said at compile time, while the fix (a hub id, a mount) is cheap."""
    target = ctx.get("deployment", "target")
    if (
        target not in ("docker", "kubernetes")
        and ctx.get("distributed", "launcher") != "kubernetes"
    ):
        return
    base = ctx.get("base_model")
    found: list[tuple[str, ...]] = (
        [("base_model",)] if isinstance(base, str) and is_local(base) else []
    )
    if ctx.get("dataset", "source", "type") != "hub" and ctx.get("dataset", "source", "path"):
        found.append(("dataset", "source", "path"))
    for path in found:
        ctx.warn(
            path,
            f"{ctx.get(*path)!r} is read from this machine's disk, and the training image holds "
            "the bundle alone: in the container that path does not exist",
            "use a hub id (or a hub dataset), or mount the files where the path points in the "
            "container (e.g. a volume in k8s/job.yaml)",
        )
