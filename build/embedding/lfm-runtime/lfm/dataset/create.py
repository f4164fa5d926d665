"""`lfm dataset create`: documents in, a filtered, split dataset with its report and card out.

Documents stream through worker processes (read, chunk, and for the offline generator also
generate and assess) in a bounded window, so memory does not grow with the corpus; the main
process removes duplicates, assigns splits and writes records as they arrive.

Domain relevance compares each record with every passage of the collection, so it can only be
judged once all documents are read: with it on, the processed documents are spooled to a
temporary file (on disk, not in memory) while their passages are indexed, then replayed.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lfm.runtime import links
from lfm.runtime.dataset_gates import evaluate as evaluate_gates

from .discover import SourceFile, discover, skipped_links
from .errors import DatasetError
from .formats import to_record
from .generators.base import Generator, build_generator
from .options import CreateOptions
from .publish import Staging
from .quality import Deduplicator
from .quality.metrics import Metrics
from .quality.relevance import RelevanceIndex
from .report import build_report, write_outputs
from .splits import holdout_documents
from .stage import DocumentResult, generate_and_assess, process_file
from .writer import RecordWriter

Progress = Callable[[int, int], None]
EXAMPLES_KEPT = 3  # examples shown in the dataset card
SMALL_CORPUS = 32  # files; fewer are read in this process
BATCH = 8  # files per task sent to a worker process


@dataclass
class Tally:
    """Counts the report is built from."""

    documents: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    without_records: list[dict[str, Any]] = field(default_factory=list)  # read, but kept nothing
    chunks: int = 0
    generated: int = 0
    augmented: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    pii: Counter[str] = field(default_factory=Counter)
    split_records: Counter[str] = field(default_factory=Counter)
    split_documents: dict[str, set[str]] = field(
        default_factory=lambda: {"train": set(), "test": set()}
    )
    examples: list[dict[str, Any]] = field(default_factory=list)
    generator_stats: dict[str, int] = field(default_factory=dict)


def create(
    options: CreateOptions,
    output: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    chunk_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Build the dataset at ``output``; returns the report (also written beside it).
    ``progress`` hears (documents done, total); ``chunk_progress``, for a model generator, the
    number of chunks answered since it last heard."""
    files = discover(options.sources)
    links.warn(skipped_links(files))  # also in the report, with the other skipped documents
    _refuse_overwriting_sources(files, output)
    staging = Staging(output, force=force)
    try:
        report = _build(files, options, staging, progress, chunk_progress)
        if not report["records"]["kept"]:
            raise DatasetError(_nothing_kept(report))  # nothing published: a failure, not exit 0
        if not report["records"]["train"]:
            raise DatasetError(
                f"every one of the {report['records']['kept']} records came from documents held "
                "out for the test split, so there is nothing to train on; lower split_ratio, "
                "change the seed, or add documents; nothing was written"
            )
        written = staging.publish()
    except BaseException:
        staging.discard()  # the previous output stays as it was
        raise
    report["files"] = {role: str(path) for role, path in written.items()}
    return report


def _refuse_overwriting_sources(files: list[SourceFile], output: Path) -> None:
    target = Path(os.path.abspath(output))
    for file in files:
        path = Path(os.path.abspath(file.path))
        if path == target or path.is_relative_to(target):
            raise DatasetError(f"--output {output} would overwrite the source {file.path}")


def _nothing_kept(report: dict[str, Any]) -> str:
    """Why a run kept no record, from its report: skipped documents, the generator, filters."""
    docs = report["documents"]
    why = [f"{s['file']}: {s['reason']}" for s in docs["skipped"][:3]]
    why += [f"{d['file']}: {d['why']}" for d in docs["without_records"][:3]]
    stats = (report.get("generator") or {}).get("stats") or {}
    for key, what in (
        ("failed_requests", "requests failed"),
        ("unparsable_replies", "replies were not Q&A JSON"),
    ):
        if stats.get(key):
            why.append(f"{stats[key]} of the generator's {what}")
    why += [
        f"{f['removed']} {name} ({f['why']})"
        for name, f in report["filters"].items()
        if f["removed"]
    ]
    detail = "; ".join(why) or "no text to make records from"
    return (
        f"no records were kept from {docs['found']} document(s) ({docs['read']} read, "
        f"{report['records_assessed']} records assessed): {detail}; nothing was written"
    )


def _build(
    files: list[SourceFile],
    options: CreateOptions,
    staging: Staging,
    progress: Progress | None,
    chunk_progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    holdout = holdout_documents([f.name for f in files], options.split_ratio, options.seed)
    generator = None
    if options.format != "completion" and options.generation.backend != "offline":
        generator = build_generator(options.generation)
        if hasattr(generator, "on_chunk"):
            generator.on_chunk = chunk_progress
    dedup = (
        Deduplicator(options.quality.near_duplicate_threshold)
        if options.quality.duplicate_detection
        else None
    )
    tally, metrics = Tally(), Metrics()
    relevance = RelevanceIndex() if options.quality.scores_relevance else None
    writers = {"train": RecordWriter(staging.path("train"))}
    if holdout:
        writers["test"] = RecordWriter(staging.path("test"))
    try:
        results = _results(files, options)
        if generator is not None:
            results = _generate_ahead(results, generator, options)
        if relevance is not None:
            results = _indexed_then_replayed(results, relevance, staging.dir, len(files), progress)
            progress = None  # reported while spooling
        for done, result in enumerate(results, start=1):
            _take(result, options, generator, dedup, relevance, holdout, writers, tally, metrics)
            if progress:
                progress(done, len(files))
    finally:
        for writer in writers.values():
            writer.close()
    if generator is not None:
        tally.generator_stats = dict(generator.stats)
    summary = metrics.summary(tally.documents - len(tally.skipped), tally.chunks)
    if not options.quality.coverage_analysis:
        summary.pop("coverage_analysis")
    report = build_report(options, tally, summary)
    # Gates are judged here so the report and card say the outcome; the CLI exits non-zero.
    report["gates"] = evaluate_gates(dict(options.quality.gates), summary)
    write_outputs(report, metrics.lengths, tally.examples, staging)
    return report


def _results(files: list[SourceFile], options: CreateOptions) -> Iterator[DocumentResult]:
    workers = min(options.worker_count, len(files))
    # Starting worker processes costs about a second each: small corpora are read in-process.
    if workers <= 1 or len(files) < SMALL_CORPUS:
        yield from (process_file(file, options) for file in files)
        return
    # Fewer, larger messages between processes (itertools.batched needs Python 3.12).
    batches = (tuple(files[i : i + BATCH]) for i in range(0, len(files), BATCH))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        work = partial(_process_batch, options=options)
        for batch in _bounded_map(pool, work, batches, window=workers * 2):
            yield from batch


def _generate_ahead(
    results: Iterator[DocumentResult], generator: Generator, options: CreateOptions
) -> Iterator[DocumentResult]:
    """Run an LLM generator on several documents at once (in order, a bounded window ahead):
    with one document at a time, a short document would leave the endpoint idle."""
    window = max(1, options.generation.concurrency)

    def generate(result: DocumentResult) -> DocumentResult:
        if result.skipped is None:
            generate_and_assess(result, generator, options)
        return result

    with ThreadPoolExecutor(max_workers=window) as pool:
        pending: deque[Future[DocumentResult]] = deque()
        for result in results:
            pending.append(pool.submit(generate, result))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _indexed_then_replayed(
    results: Iterator[DocumentResult],
    relevance: RelevanceIndex,
    folder: Path,
    total: int,
    progress: Progress | None,
) -> Iterator[DocumentResult]:
    """Index every document's passages, spooling the results to disk; then replay them."""
    with tempfile.TemporaryFile(dir=folder, prefix=".spool.") as spool:
        count = 0
        for count, result in enumerate(results, start=1):
            relevance.add([chunk.text for chunk in result.chunks])
            pickle.dump(result, spool, protocol=pickle.HIGHEST_PROTOCOL)
            if progress:
                progress(count, total)
        spool.seek(0)
        for _ in range(count):
            yield pickle.load(spool)  # our own file, written just above


def _process_batch(files: tuple[SourceFile, ...], options: CreateOptions) -> list[DocumentResult]:
    return [process_file(file, options) for file in files]


def _bounded_map(
    pool: Any, work: Callable[..., Any], items: Iterable[Any], window: int
) -> Iterator:
    """``pool.imap`` with at most ``window`` tasks in flight, in order: a slow consumer (a
    remote generator) must not let finished documents pile up in memory."""
    it = iter(items)
    pending = deque(pool.apply_async(work, (x,)) for x in itertools.islice(it, window))
    while pending:
        result = pending.popleft().get()
        for x in itertools.islice(it, 1):
            pending.append(pool.apply_async(work, (x,)))
        yield result


def _take(
    result: DocumentResult,
    options: CreateOptions,
    generator: Generator | None,
    dedup: Deduplicator | None,
    relevance: RelevanceIndex | None,
    holdout: frozenset[str],
    writers: dict[str, RecordWriter],
    tally: Tally,
    metrics: Metrics,
) -> None:
    tally.documents += 1
    if result.skipped is not None:
        tally.skipped.append({"file": result.name, "reason": result.skipped})
        return
    tally.chunks += len(result.chunks)
    if result.assessed is None:
        assert generator is not None
        generate_and_assess(result, generator, options)
    tally.generated += result.generated
    tally.augmented += result.augmented
    split = "test" if result.name in holdout else "train"
    assessed = result.assessed or []
    kept_before = tally.split_records[split]
    removed: Counter[str] = Counter()  # this document's, by reason, filters and duplicates
    if relevance is not None:
        relevance.score_items(item for item, reason in assessed if reason is None)
    for item, reason in assessed:
        tally.pii.update(item.pii_found)
        if (
            reason is None
            and relevance is not None
            and item.scores["domain_relevance"] < options.quality.min_domain_relevance
        ):
            reason = "off_domain"
        if reason is None and dedup is not None:
            reason = dedup.check(item.text, item.group, item.signature)
        if reason is not None:
            tally.removed[reason] += 1
            removed[reason] += 1
            continue
        record = to_record(item.messages, options.format, item.metadata)
        writers[split].write(record)
        tally.split_records[split] += 1
        tally.split_documents[split].add(result.name)
        metrics.add(item)
        if len(tally.examples) < EXAMPLES_KEPT:
            tally.examples.append(record)
    if tally.split_records[split] == kept_before:
        tally.without_records.append(_why_nothing(result, len(assessed), removed))


def _why_nothing(result: DocumentResult, pairs: int, removed: Counter[str]) -> dict[str, Any]:
    """Why a document that was read gave no record, for the report and the command's output."""
    if not result.chunks:
        why = "no text in it"
    elif not pairs:
        why = "no sentence in it that a question could be asked of"
    else:
        why = (
            "quality control removed every pair ("
            + ", ".join(f"{n} {reason}" for reason, n in sorted(removed.items()))
            + ")"
        )
    return {"file": result.name, "chunks": len(result.chunks), "pairs": pairs, "why": why}
