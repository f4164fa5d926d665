"""What the command modules share: how a config is named on the command line, how compiler
diagnostics are printed, and how a compiled bundle is launched."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from lfm.compiler.diagnostics import CompileError, Diagnostic

EXIT_ERROR = 1


def print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for d in diagnostics:
        click.echo(d.format(), err=True)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a CompileError into its diagnostics and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CompileError as exc:
            print_diagnostics(exc.diagnostics)
            errors = sum(d.level == "error" for d in exc.diagnostics)
            click.echo(f"{errors} error{'s' if errors != 1 else ''}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


def config_argument(command: Callable[..., Any]) -> Callable[..., Any]:
    """CONFIG as an argument (`lfm compile my.yaml`) or as --config (the seed's spelling)."""
    command = click.argument("config_arg", metavar="CONFIG", required=False, type=click.Path())(
        command
    )
    command = click.option(
        "--config", "config_opt", type=click.Path(), help="The config file (same as CONFIG)."
    )(command)
    return command


output_option = click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Bundle directory [default: build/NAME].",
)


def pick_config(config_arg: str | None, config_opt: str | None) -> str:
    if config_arg and config_opt and config_arg != config_opt:
        raise click.UsageError("give the config once: as CONFIG or as --config")
    config = config_arg or config_opt
    if not config:
        raise click.UsageError("missing CONFIG (a model_config YAML or JSON file)")
    return config


def warn_about_edits(kept: list[str], bundle_dir: Path) -> None:
    for name in kept:
        original = name.rsplit(".edited", 1)[0]
        click.echo(
            f"warning: {bundle_dir}/{original} had been edited by hand; the compiled one replaces "
            f"it and your version is kept as {bundle_dir}/{name} (change the config instead)",
            err=True,
        )


def launch_command(result: Any, bundle_dir: Path, python: str | None = None) -> list[str]:
    """How the bundle runs (to show the user, or with ``python`` to run it here): one process,
    or accelerate's launcher with the bundle's accelerate.yaml for a multi-process bundle."""
    train = str(bundle_dir / "train.py")
    if not result.plan.distributed.multi_process:
        return [python or "python", train]
    launcher = [python, "-m", "accelerate.commands.launch"] if python else ["accelerate", "launch"]
    return [*launcher, "--config_file", str(bundle_dir / "accelerate.yaml"), train]


def needs_extra(what: str, extras: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A command whose work needs an extra: a third-party module missing anywhere in it is one
    line naming the `pip install`, not a traceback (modules are imported where they are used,
    so a missing one can surface deep inside the work)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except ModuleNotFoundError as exc:
                if (exc.name or "lfm").partition(".")[0] == "lfm":
                    raise  # lfm's own module: a broken install, not a missing extra
                raise missing_extra(exc, what, extras) from None

        return wrapper

    return decorate


def trust_code_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--trust-code MODULE|DIR (repeatable): the user's own say-so for code a config names."""
    return click.option(
        "--trust-code",
        "trust_code",
        multiple=True,
        metavar="MODULE|DIR",
        callback=_trust,
        expose_value=False,
        help="Allow the config to run this code: a toxicity scorer's module, or an lm-eval task "
        "folder with !function (repeatable; also LFM_TRUST_CODE).",
    )(command)


def _trust(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> None:
    from lfm.runtime import trust

    if values:
        trust.allow(values)


def allow_http_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--allow-http HOST (repeatable): the user's own say-so for plain http a config asks for."""
    return click.option(
        "--allow-http",
        "allow_http",
        multiple=True,
        metavar="HOST",
        callback=_allow_http,
        expose_value=False,
        help="Allow plain http (no TLS) to this host, e.g. a server on your own network "
        "(repeatable, or * for any; also LFM_ALLOW_HTTP). Loopback needs no allowing.",
    )(command)


def _allow_http(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> None:
    from lfm.runtime import endpoints

    if values:
        endpoints.allow_http(values)


def missing_extra(exc: ImportError, what: str, extras: str) -> click.ClickException:
    """An optional dependency is missing: name it and the extra that installs it, e.g.
    ``missing_extra(exc, "training extra", "train")``."""
    return click.ClickException(f"{exc}; install the {what}: pip install 'lfm[{extras}]'")
