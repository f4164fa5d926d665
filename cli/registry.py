"""`lfm register|list|pull|promote|rollback|show` and `lfm registry audit|verify|gc|where`.

Also reachable as `llamafarm models <command>` with the seed's flags. The registry package is
imported inside each command, so `lfm --help` and the compile path stay light.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import missing_extra

if TYPE_CHECKING:
    from lfm.registry import Registry, VersionRecord


def registry_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = (
        click.option("--uri", help="MLflow tracking server URL (with --backend mlflow)."),
        click.option(
            "--backend",
            type=click.Choice(["embedded", "mlflow"]),
            help="embedded (a local directory, the default) or mlflow (a tracking server).",
        ),
        click.option(
            "--registry",
            "registry_path",
            type=click.Path(file_okay=False),
            help="Registry directory [default: $LFM_REGISTRY, the config, or the user data dir].",
        ),
    )
    for option in options:
        command = option(command)
    return command


@contextmanager
def opened_registry(
    registry_path: str | None, backend: str | None, uri: str | None
) -> Iterator[Registry]:
    """The registry, with its errors turned into one-line messages and exit status 1."""
    from lfm.registry import RegistryError, open_registry

    store = None
    try:
        store = open_registry(registry_path, backend, uri)
        yield store
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or 'registry'}: {exc.strerror}") from None
    finally:
        if store is not None:
            store.close()


def registry_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """RegistryErrors raised outside `opened_registry` (argument parsing) as one line too, and a
    missing registry extra (semver, platformdirs) as the command that installs it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            from lfm.registry import RegistryError
        except ImportError as exc:
            raise missing_extra(exc, "registry extra", "registry") from None
        try:
            return command(*args, **kwargs)
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from None
        except ImportError as exc:
            raise missing_extra(exc, "registry extra", "registry") from None

    return wrapper


@click.command("register")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(),
    help="The trained model or adapter: a training output directory.",
)
@click.option("--name", help="Registry name [default: the bundle's model name].")
@click.option("--version", "version", help="Semantic version, e.g. 1.2.0 [default: the bundle's].")
@click.option("--base-model", help="Base model [default: from the adapter and the lock file].")
@click.option("--method", help="Fine-tuning method [default: from the lock file].")
@click.option("--dataset", help="Dataset name [default: from the lock file].")
@click.option(
    "--type", "model_type", help="adapter, merged, full or embedding [default: detected]."
)
@click.option(
    "--performance-metrics",
    "metrics_file",
    type=click.Path(),
    help="eval_results.json [default: one beside the model or in its bundle].",
)
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(file_okay=False),
    help="The bundle it was trained from [default: found above --model].",
)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE, repeatable (e.g. domain=medical).")
@registry_options
@registry_errors
def register_cmd(
    model_dir: str,
    tags: tuple[str, ...],
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
    **lineage: Any,
) -> None:
    """Register a trained model or adapter as NAME:VERSION, with its lineage and metrics."""
    from lfm.registry.prepare import parse_tags, prepare

    request = prepare(model_dir, tags=parse_tags(tags), **lineage)
    with opened_registry(registry_path, backend, uri) as store:
        record, created = store.register(request)
    size = _size(record.size)
    if created:
        click.echo(
            f"registered {record.name}:{record.version} ({record.type}, {len(record.files)} "
            f"files, {size}) in {store.location}"
        )
    else:
        click.echo(f"{record.name}:{record.version} is already registered with identical content")


@click.command("list")
@click.argument("name", required=False)
@click.option("--type", "model_type", help="Only adapters, merged, full or embedding models.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="KEY=VALUE on tags, lineage or metrics (also !=, >=, <=, >, <); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@registry_options
@registry_errors
def list_cmd(
    name: str | None,
    model_type: str | None,
    filters: tuple[str, ...],
    as_json: bool,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """List registered versions (of NAME, or of every model), oldest first."""
    from lfm.registry.filters import parse_filters
    from lfm.registry.lineage import normalize_type
    from lfm.registry.references import check_name

    wanted = parse_filters(filters)
    kind = normalize_type(model_type) if model_type else None
    with opened_registry(registry_path, backend, uri) as store:
        records = store.list_versions(check_name(name) if name else None)
    records = [
        r for r in records if (kind is None or r.type == kind) and all(f.matches(r) for f in wanted)
    ]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in records], indent=2, sort_keys=True))
        return
    if not records:
        click.echo("no versions match" if (filters or kind or name) else "the registry is empty")
        return
    _print_table(records)


def _print_table(records: list[VersionRecord]) -> None:
    from lfm.registry.show import printable
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "VERSION", "TYPE", "BASE MODEL", "METHOD", "DATASET", "ENV", "TAGS"):
        table.add_column(column, overflow="fold")
    for r in records:
        cells = (
            r.name,
            r.version,
            r.type,
            str(r.lineage.get("base_model", "")),
            str(r.lineage.get("method", "")),
            str(r.lineage.get("dataset", "")),
            ",".join(r.environments),
            " ".join(f"{k}={v}" for k, v in sorted(r.tags.items())),
        )
        # Text, not markup: a tag reading "[red]" is shown as written, escapes escaped.
        table.add_row(*(Text(printable(cell)) for cell in cells))
    Console(width=200, soft_wrap=True).print(table)


@click.command("pull")
@click.argument("reference")
@click.option(
    "--to", "dest", type=click.Path(file_okay=False), help="Destination [default: ./NAME-VERSION]."
)
@click.option("--link", is_flag=True, help="Hard-link files from the store instead of copying.")
@click.option("--force", is_flag=True, help="Replace a non-empty destination.")
@registry_options
@registry_errors
def pull_cmd(
    reference: str,
    dest: str | None,
    link: bool,
    force: bool,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """Copy NAME[:VERSION|@ENV] to a directory, verifying every file's sha256."""
    from lfm.registry import parse_reference

    ref = parse_reference(reference)
    with opened_registry(registry_path, backend, uri) as store:
        record = store.get(ref, with_files=False)
        target = Path(dest) if dest else Path(f"{record.name}-{record.version}")
        record = store.pull(f"{record.name}:{record.version}", target, link=link, force=force)
    click.echo(
        f"pulled {record.name}:{record.version} to {target} ({len(record.files)} files, "
        f"{_size(record.size)}, every sha256 verified)"
    )


@click.command("promote")
@click.argument("reference")
@click.option("--env", required=True, help="Environment, e.g. dev, staging, production.")
@click.option(
    "--require-gates",
    is_flag=True,
    help="Refuse unless the version's evaluation gates all passed.",
)
@click.option("--reason", default="", help="Why, for the history.")
@registry_options
@registry_errors
def promote_cmd(
    reference: str,
    env: str,
    require_gates: bool,
    reason: str,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """Point an environment at NAME:VERSION (the previous one is kept for rollback)."""
    with opened_registry(registry_path, backend, uri) as store:
        move = store.promote(reference, env, require_gates=require_gates, reason=reason)
        if move is None:
            record = store.get(reference, with_files=False)
            click.echo(f"{record.name}@{env} already points at {record.version}")
            return
    was = f" (was {move.from_version})" if move.from_version else ""
    click.echo(f"{move.name}@{env} -> {move.to_version}{was}")


@click.command("rollback")
@click.argument("name_arg", metavar="NAME", required=False)
@click.option("--name", "name_opt", help="The model (same as NAME).")
@click.option("--env", default="production", show_default=True, help="The environment.")
@click.option("--version", "version", help="Roll back to this version [default: the previous one].")
@registry_options
@registry_errors
def rollback_cmd(
    name_arg: str | None,
    name_opt: str | None,
    env: str,
    version: str | None,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """Point an environment back at the version it had before."""
    from lfm.registry.references import check_name, check_version

    if name_arg and name_opt and name_arg != name_opt:
        raise click.UsageError("give the model once: as NAME or as --name")
    name = name_arg or name_opt
    if not name:
        raise click.UsageError("missing NAME (or --name)")
    with opened_registry(registry_path, backend, uri) as store:
        move = store.rollback(check_name(name), env, check_version(version) if version else None)
    click.echo(f"{move.name}@{env} -> {move.to_version} (rolled back from {move.from_version})")


@click.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--verify", is_flag=True, help="Also check every stored file's sha256.")
@registry_options
@registry_errors
def show_cmd(
    reference: str,
    as_json: bool,
    verify: bool,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """A version's lineage, metrics, files, environments and history."""
    from lfm.registry.show import render_record

    with opened_registry(registry_path, backend, uri) as store:
        record = store.get(reference)
        moves = store.history(record.name)
        problems = store.verify(f"{record.name}:{record.version}") if verify else []
    if as_json:
        data = record.as_dict()
        data["history"] = [m.__dict__ for m in moves]
        if verify:
            data["problems"] = problems
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(render_record(record, moves))
        if verify and not problems:
            click.echo(f"verified: all {len(record.files)} files match their sha256")
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(1)


@click.group("registry")
def registry_group() -> None:
    """Registry housekeeping: audit log, verification, garbage collection, location."""


@registry_group.command("audit")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@registry_options
@registry_errors
def audit_cmd(
    name: str | None, as_json: bool, registry_path: str | None, backend: str | None, uri: str | None
) -> None:
    """Every change (register, promote, rollback): who, when, what, from and to."""
    from lfm.registry.show import printable

    with opened_registry(registry_path, backend, uri) as store:
        entries = store.audit(name)
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in entries], indent=2, sort_keys=True))
        return
    for e in entries:
        where = f"@{e.env}" if e.env else ""
        change = f" {e.from_value or '-'} -> {e.to_value or '-'}" if e.env else ""
        why = e.detail.get("reason") or e.detail.get("detail")  # a move's reason, a note's text
        said = f"  {printable(str(why))}" if why else ""
        click.echo(f"{e.at}  {e.who}  {e.action}  {e.name}:{e.version or ''}{where}{change}{said}")


@registry_group.command("verify")
@registry_options
@registry_errors
def verify_cmd(registry_path: str | None, backend: str | None, uri: str | None) -> None:
    """Check every stored file of every version against its sha256."""
    with opened_registry(registry_path, backend, uri) as store:
        problems = store.verify()
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo("every stored file matches its sha256")


@registry_group.command("gc")
@click.option("--grace", default=3600, show_default=True, help="Keep anything younger (seconds).")
@registry_options
@registry_errors
def gc_cmd(grace: int, registry_path: str | None, backend: str | None, uri: str | None) -> None:
    """Delete stored files no version uses (left by interrupted registers)."""
    with opened_registry(registry_path, backend, uri) as store:
        if not hasattr(store, "gc"):
            raise click.ClickException(
                "gc is for the embedded registry; MLflow manages its own store"
            )
        removed, freed = store.gc(grace)
    click.echo(f"removed {removed} unused files ({_size(freed)})")


@registry_group.command("where")
@registry_options
@registry_errors
def where_cmd(registry_path: str | None, backend: str | None, uri: str | None) -> None:
    """Print which registry the other commands would use."""
    from lfm.registry.location import settings

    found = settings(registry_path, backend, uri)
    click.echo(f"{found.backend} {found.uri or found.path}")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


REGISTRY_COMMANDS = (
    register_cmd,
    list_cmd,
    pull_cmd,
    promote_cmd,
    rollback_cmd,
    show_cmd,
    registry_group,
)
