"""`lfm dataset create|check|convert` and the seed's `llamafarm models create-dataset`.

The work lives in ``lfm.dataset`` (the ``dataset`` extra), imported inside each command so
that `lfm --help` and the compile-side commands stay light.
"""

from __future__ import annotations

import contextlib
import copy
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from lfm.runtime import trust

from .common import (
    EXIT_ERROR,
    allow_http_option,
    needs_extra,
    print_diagnostics,
    trust_code_option,
)

FORMATS = ("alpaca", "chatml", "messages", "sharegpt", "completion")
PREFERENCE = ("preference", "unpaired_preference")
GENERATORS = ("offline", "openai", "transformers")


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _create_options(func: Any) -> Any:
    options = [
        click.option("--source", "sources", multiple=True, type=click.Path(),
                     help="A document folder or file (repeatable) [default: the config's]."),
        click.option("--format", "fmt", type=click.Choice(FORMATS),
                     help="Output format [default: alpaca]."),
        click.option("-o", "--output", type=click.Path(),
                     help="A .jsonl/.json file or a folder [default: datasets/SOURCE_NAME.jsonl, beside --config when given]."),
        click.option("--config", type=click.Path(dir_okay=False),
                     help="Take the settings from this model_config's dataset section."),
        click.option("--generator", type=click.Choice(GENERATORS),
                     help="Q&A generator [default: offline, or from --model/--base-url]."),
        click.option("--model", help="Generator model: a name at --base-url, or a local path."),
        click.option("--base-url", help="An OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
        click.option("--api-key-env", help="NAME of the environment variable holding the API key."),
        click.option("--questions-per-doc", type=click.IntRange(1, 1000)),
        click.option("--questions-per-chunk", type=click.IntRange(1, 100)),
        click.option("--concurrency", type=click.IntRange(1, 256), help="Parallel LLM requests."),
        click.option("--batch-size", type=click.IntRange(1, 256),
                     help="Prompts per generate() call of a local --model [default: 8]."),
        click.option("--requests-per-minute", type=click.FloatRange(0), help="LLM rate limit (0: none)."),
        click.option("--chunk-size", type=click.IntRange(16), help="Tokens per chunk [default: 384]."),
        click.option("--chunk-overlap", type=click.IntRange(0), help="Tokens shared by neighbouring chunks [default: 48]."),
        click.option("--tokenizer", help="Count chunk tokens with this tokenizer (path or id), or 'words' "
                     "[default: the --config base model's when it loads offline, else words]."),
        click.option("--split-ratio", type=click.FloatRange(0, 1, max_open=True),
                     help="Share of documents held out as the test split."),
        click.option("--seed", type=int, help="Split seed [default: 42]."),
        click.option("--include-metadata", is_flag=True, default=None, help="Keep source, page and section per record."),
        click.option("--keep-passages", is_flag=True, default=None,
                     help="Keep each pair's source chunk (metadata.passage), for embedding models "
                     "[default: on for a --config with task: embedding]."),
        click.option("--augment", is_flag=True, default=None, help="Add question variants."),
        click.option("--min-length", type=click.IntRange(0), help="Drop records shorter than this (chars)."),
        click.option("--max-length", type=click.IntRange(0), help="Drop records longer than this (chars)."),
        click.option("--language", help="Keep records in this language only (ISO 639-1)."),
        click.option("--pii", type=click.Choice(["redact", "drop", "off"]), help="Personal data: redact (default), drop or keep."),
        click.option("--toxicity-filter/--no-toxicity-filter", default=None),
        click.option("--toxicity-scorer", help="A module:function scorer, imported because you name it here [default: offline word list]."),
        click.option("--include-context", is_flag=True, default=None,
                     help="Put the source chunk in each example's input (RAG-style)."),
        click.option("--min-quality", type=click.FloatRange(0, 1), help="Drop records scoring below this."),
        click.option("--question-check/--no-question-check", default=None,
                     help="Drop questions cut from clause fragments ('What is When a variable?') [default: on]."),
        click.option("--model-judge", is_flag=True, default=None,
                     help="The generator's model rates each pair 1-5 (in quality_score and the report)."),
        click.option("--min-judge-score", type=click.FloatRange(0, 1),
                     help="Drop pairs the model rates below this (rating 1-5 scaled to 0-1)."),
        click.option("--min-coherence", type=click.FloatRange(0, 1),
                     help="Drop records whose coherence score is below this."),
        click.option("--domain-relevance", is_flag=True, default=None,
                     help="Score each record's similarity to the source documents (reported)."),
        click.option("--min-relevance", type=click.FloatRange(0, 1),
                     help="Drop records whose domain relevance is below this."),
        click.option("--dedup/--no-dedup", default=None, help="Exact and near-duplicate removal [default: on]."),
        click.option("--cache-dir", type=click.Path(file_okay=False),
                     help="LLM reply cache [default: .lfm-cache/generations, beside --config when given]."),
        click.option("--workers", type=click.IntRange(0), default=0, help="Reader processes [default: one per core]."),
        click.option("--force", is_flag=True, help="Replace existing output."),
        trust_code_option,
        allow_http_option,
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


# flag name -> where it goes in a model_config dataset section
FLAG_PATHS = {
    "fmt": ("preprocessing", "format"),
    "model": ("preprocessing", "qa_generation", "model"),
    "generator": ("preprocessing", "qa_generation", "backend"),
    "base_url": ("preprocessing", "qa_generation", "base_url"),
    "api_key_env": ("preprocessing", "qa_generation", "api_key_env"),
    "questions_per_doc": ("preprocessing", "qa_generation", "questions_per_doc"),
    "questions_per_chunk": ("preprocessing", "qa_generation", "questions_per_chunk"),
    "concurrency": ("preprocessing", "qa_generation", "concurrency"),
    "requests_per_minute": ("preprocessing", "qa_generation", "requests_per_minute"),
    "chunk_size": ("preprocessing", "chunk_size"),
    "chunk_overlap": ("preprocessing", "chunk_overlap"),
    "split_ratio": ("validation", "split_ratio"),
    "include_metadata": ("source", "include_metadata"),
    "keep_passages": ("source", "keep_passages"),
    "augment": ("augmentation",),
    "min_length": ("quality_control", "minimum_length"),
    "max_length": ("quality_control", "maximum_length"),
    "language": ("quality_control", "language"),
    "pii": ("quality_control", "pii"),
    "toxicity_filter": ("quality_control", "toxicity_filter"),
    "toxicity_scorer": ("quality_control", "toxicity_scorer"),
    "include_context": ("preprocessing", "qa_generation", "include_context"),
    "min_quality": ("quality_control", "min_quality_score"),
    "question_check": ("quality_control", "question_check"),
    "model_judge": ("quality_control", "model_judge"),
    "min_judge_score": ("quality_control", "min_judge_score"),
    "batch_size": ("preprocessing", "qa_generation", "batch_size"),
    "min_coherence": ("quality_control", "min_coherence_score"),
    "dedup": ("quality_control", "duplicate_detection"),
    "domain_relevance": ("quality_control", "domain_relevance"),
    "min_relevance": ("quality_control", "min_domain_relevance"),
}
DOCUMENT_SOURCES = ("documents", "rag_documents")


def _section_from_config(config: str | None) -> tuple[dict[str, Any], list[str], int, str | None]:
    """(dataset section, its document sources, seed, base_model) from a model_config, or empty."""
    if not config:
        return {}, [], 42, None
    from lfm.compiler.diagnostics import CompileError
    from lfm.compiler.pipeline import analyze

    try:
        resolved = analyze(config).resolved.config
    except CompileError as exc:  # the config's own errors, printed like `lfm validate`
        print_diagnostics(exc.diagnostics)
        sys.exit(EXIT_ERROR)
    dataset = copy.deepcopy(resolved["dataset"])
    if resolved.get("task") == "embedding":  # its pairs need their passages
        dataset.setdefault("source", {})["keep_passages"] = True
    base = Path(config).parent
    path = dataset.get("source", {}).get("path")
    sources = [str(base / path)] if path else []
    seed = resolved["fine_tuning"]["training"]["seed"]
    return dataset, sources, seed, resolved.get("base_model")


@needs_extra("dataset extra", "dataset")
def run_create(flags: dict[str, Any]) -> None:
    import lfm.dataset.create as create_module
    from lfm.dataset import DatasetError
    from lfm.dataset.options import options_from_config, with_cache

    config = flags.pop("config")
    home = Path(config).parent if config else Path()  # where the default outputs go
    if flags["toxicity_scorer"]:  # named on the command line by the user: theirs to run
        trust.allow([flags["toxicity_scorer"].partition(":")[0]])
    dataset, sources, seed, base_model = _section_from_config(config)
    for flag, path in FLAG_PATHS.items():
        value = flags.get(flag)
        if value is not None:
            node = dataset
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    if flags["model"] and not flags["generator"] and flags["model"] != "offline":
        dataset["preprocessing"]["qa_generation"].pop("backend", None)
    sources = list(flags["sources"]) or sources
    if not sources:
        raise click.UsageError("give --source (a document folder or file) or --config")
    output = Path(
        flags["output"] or home / "datasets" / f"{Path(sources[0]).stem or 'dataset'}.jsonl"
    )
    try:
        options = options_from_config(
            dataset, sources=sources, seed=flags["seed"] if flags["seed"] is not None else seed,
            tokenizer=_tokenizer(flags["tokenizer"], base_model, config),
        )  # fmt: skip
        cache = flags["cache_dir"] or home / ".lfm-cache" / "generations"
        options = with_cache(options, Path(cache))
        from dataclasses import replace

        options = replace(options, workers=flags["workers"])
        started = time.monotonic()
        with _progress(options.generation.backend) as (documents, chunks):
            report = create_module.create(
                options, output, force=flags["force"], progress=documents, chunk_progress=chunks
            )
    except DatasetError as exc:
        raise _fail(exc) from None
    _print_summary(report, time.monotonic() - started)
    _exit_on_failed_gates(report, "the dataset was written but failed its gates")


def _tokenizer(flag: str | None, base_model: str | None, config: str | None) -> str | None:
    """--tokenizer, else the config's base model when it loads offline, else words (None)."""
    from lfm.dataset.tokenizers import WORDS, base_model_tokenizer

    if flag is not None:
        return None if flag == WORDS else flag
    if not base_model or not config:
        return None
    name, notice = base_model_tokenizer(base_model, Path(config).parent)
    if notice:
        click.echo(f"note: chunk sizes counted in words: {notice}", err=True)
    return name


@contextlib.contextmanager
def _progress(backend: str) -> Iterator[tuple[Any, Any]]:
    """Progress bars on a terminal (rich): documents read, and with a model generator the chunks
    it has answered; (None, None) elsewhere, so logs stay clean."""
    if not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bars:
        read = bars.add_task("documents", total=None)
        asked = bars.add_task(f"chunks ({backend})", total=None, visible=backend != "offline")

        def documents(done: int, total: int) -> None:
            bars.update(read, completed=done, total=total)

        def chunks(count: int) -> None:
            bars.advance(asked, count)

        yield documents, chunks


def _print_summary(report: dict[str, Any], seconds: float) -> None:
    docs, records = report["documents"], report["records"]
    click.echo(
        f"read {docs['read']} of {docs['found']} documents -> {report['chunks']} chunks -> "
        f"{report['records_assessed']} records; kept {records['kept']} "
        f"(train {records['train']}, test {records['test']}) in {seconds:.1f}s"
    )
    for skipped in docs["skipped"]:
        click.echo(f"  skipped {skipped['file']}: {skipped['reason']}")
    for barren in docs["without_records"]:
        click.echo(f"  no records from {barren['file']}: {barren['why']}")
    for name, f in report["filters"].items():
        if f["removed"]:
            click.echo(f"  removed {f['removed']} {name}: {f['why']}")
    click.echo(_metrics_line(report["metrics"]))
    for role in ("train", "test", "report", "card"):
        if role in report["files"]:
            click.echo(f"wrote {report['files'][role]}")


def _metrics_line(m: dict[str, Any]) -> str:
    line = f"diversity_score {m['diversity_score']}, quality_score {m['quality_score']}"
    for optional in ("coherence_score", "domain_relevance"):  # when scored
        if optional in m:
            line += f", {optional} {m[optional]}"
    return line


def _exit_on_failed_gates(report: dict[str, Any], what: str) -> None:
    """quality_control gates (lfm.runtime.dataset_gates): one line per failure, exit 1."""
    from lfm.runtime.dataset_gates import failures

    failed = failures(report.get("gates", {}))
    if failed:
        click.echo(f"Error: {what}: {'; '.join(failed)}", err=True)
        sys.exit(1)


@click.group("dataset")
def dataset_group() -> None:
    """Build, check and convert fine-tuning datasets (needs: pip install 'lfm[dataset]')."""


@dataset_group.command("create")
@_create_options
def create_cmd(**flags: Any) -> None:
    """Turn documents into a Q&A (or plain-text) dataset with a report and a dataset card."""
    run_create(flags)


@click.command("create-dataset")
@_create_options
def create_dataset_cmd(**flags: Any) -> None:
    """The seed's spelling of `dataset create`."""
    run_create(flags)


@dataset_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(("auto", *FORMATS)), default="auto")
@click.option(
    "--config", type=click.Path(dir_okay=False), help="Thresholds from this model_config."
)
@click.option("--min-length", type=click.IntRange(0))
@click.option("--max-length", type=click.IntRange(0))
@click.option("--language")
@click.option("--min-quality", type=click.FloatRange(0, 1))
@click.option("--question-check/--no-question-check", default=None)
@click.option("--min-coherence", type=click.FloatRange(0, 1))
@click.option("--toxicity-filter/--no-toxicity-filter", default=None)
@click.option(
    "--min-relevance",
    type=click.FloatRange(0, 1),
    help="Flag records whose domain relevance (to the --source documents) is below this.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Path(exists=True),
    help="The source documents (repeatable): score each record's domain relevance "
    "[default: the --config's document folder, when relevance is asked for].",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Also write the report as JSON.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when any record would be removed.")
@trust_code_option
@needs_extra("dataset extra", "dataset")
def check_cmd(path: str, fmt: str, config: str | None, report_path: str | None, strict: bool, sources: tuple[str, ...], **flags: Any) -> None:  # fmt: skip
    """Report what quality control would remove from a dataset file, and its metrics."""
    from lfm.dataset import DatasetError
    from lfm.dataset.check import check_file, relevance_index
    from lfm.dataset.options import options_from_config
    from lfm.dataset.publish import write_text_atomic

    dataset, config_sources, seed, base_model = _section_from_config(config)
    for flag, value in flags.items():
        if value is not None:
            section, key = FLAG_PATHS[flag]
            dataset.setdefault(section, {})[key] = value
    try:
        options = options_from_config(dataset, sources=[], seed=seed)
        settings, relevance = options.quality, None
        if not sources and settings.scores_relevance:
            documents = dataset.get("source", {}).get("type") in DOCUMENT_SOURCES
            sources = tuple(config_sources) if documents else ()
        if sources:
            tokenizer = _tokenizer(None, base_model, config)
            relevance = relevance_index(list(sources), options.chunk, tokenizer)
        report = check_file(Path(path), settings, fmt, relevance)
    except DatasetError as exc:
        raise _fail(exc) from None
    click.echo(f"{report['file']}: {report['records']} records, {report['would_keep']} pass")
    for name, f in report["filters"].items():
        if f["flagged"]:
            click.echo(f"  {f['flagged']} {name}: {f['why']} (records {f['first_records']})")
    if report["pii_found"]:
        click.echo(f"  personal data: {report['pii_found']}")
    click.echo(_metrics_line(report["metrics"]))
    if report_path:
        write_text_atomic(Path(report_path), json.dumps(report, indent=2, sort_keys=True) + "\n")
    _exit_on_failed_gates(report, "the dataset failed its gates")
    if strict and report["would_keep"] < report["records"]:
        sys.exit(1)


@dataset_group.command("convert")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--to", "target", type=click.Choice(FORMATS + PREFERENCE), required=True)
@click.option(
    "--from", "source_fmt", type=click.Choice(("auto", *FORMATS, *PREFERENCE)), default="auto"
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option(
    "--keep-duplicates",
    is_flag=True,
    help="Keep records that are the same once converted (e.g. repeated on purpose to weigh "
    "more); by default each is written once.",
)
def convert_cmd(
    path: str, target: str, source_fmt: str, output: str, force: bool, keep_duplicates: bool
) -> None:
    """Rewrite a dataset file in another format (alpaca, chatml, sharegpt, completion; pairs
    as KTO's unpaired_preference, or preference records as SFT records of their chosen answers)."""
    from lfm.dataset import DatasetError
    from lfm.dataset.convert import convert_file

    try:
        done = convert_file(
            Path(path),
            Path(output),
            target,
            source_fmt=source_fmt,
            force=force,
            keep_duplicates=keep_duplicates,
        )
    except DatasetError as exc:
        raise _fail(exc) from None
    dropped = (
        f" ({done.duplicates} duplicate(s) dropped; --keep-duplicates keeps them)"
        if done.duplicates
        else ""
    )
    click.echo(f"wrote {done.written} {target} records to {Path(output)}{dropped}")


@dataset_group.command("from-feedback")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--to",
    "target",
    type=click.Choice(("preference", "unpaired_preference", "alpaca", "chatml")),
    default="preference",
    show_default=True,
    help="Pairs (dpo, orpo, simpo), KTO's rated completions, or SFT records of good answers.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@click.option(
    "--good", type=click.FloatRange(0, 1), default=0.5, show_default=True,
    help="A rating at or above this is a good answer.",
)  # fmt: skip
@click.option(
    "--bad", type=click.FloatRange(0, 1), default=0.5, show_default=True,
    help="A rating below this is a bad answer (between --bad and --good: neither).",
)  # fmt: skip
@click.option(
    "--pii",
    type=click.Choice(("redact", "drop", "keep")),
    default="redact",
    show_default=True,
    help="Personal data (e-mail, phone, card numbers, IP addresses) in prompts and answers.",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def from_feedback_cmd(
    path: str, target: str, output: str, good: float, bad: float, pii: str, force: bool
) -> None:
    """Turn a server's feedback log (lfm serve --feedback-text) into training records."""
    from lfm.dataset import DatasetError
    from lfm.dataset.feedback import from_feedback

    try:
        done = from_feedback(
            Path(path), Path(output), target, good=good, bad=bad, pii=pii, force=force
        )
    except DatasetError as exc:
        raise _fail(exc) from None
    notes = [
        f"{done.without_text} line(s) without prompt and answer" if done.without_text else "",
        f"{done.unrated} rating(s) between --bad and --good" if done.unrated else "",
        f"{done.duplicates} duplicate(s)" if done.duplicates else "",
        f"personal data redacted in {done.pii_redacted}" if done.pii_redacted else "",
        f"{done.pii_dropped} dropped for personal data" if done.pii_dropped else "",
    ]
    notes = [n for n in notes if n]
    click.echo(
        f"wrote {done.records} {target} record{'s' * (done.records != 1)} from {done.lines} "
        f"feedback line{'s' * (done.lines != 1)} to {output}"
        + (f" ({'; '.join(notes)})" if notes else "")
    )
