"""The compile-side commands: `init`, `validate`, `explain`, `compile` and `schema`.

They import no torch (tests/test_light_imports.py holds them to it): the work is the compiler's.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import click
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.editor import SCHEMA_FILE, configure_vscode
from lfm.compiler.schema import schema_text

from .common import (
    EXIT_ERROR,
    allow_http_option,
    config_argument,
    friendly_errors,
    launch_command,
    output_option,
    pick_config,
    print_diagnostics,
    warn_about_edits,
)


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init_cmd(path: str, force: bool) -> None:
    """Write a commented starter config to PATH."""
    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in target.stem) or "my_model"
    text = resources.files("lfm.templates").joinpath("init.yaml").read_text(encoding="utf-8")
    # Editors find the schema through the modeline, relative to the config (written by --vscode).
    schema = Path(
        os.path.relpath(Path(SCHEMA_FILE).absolute(), target.absolute().parent)
    ).as_posix()
    text = text.replace("{config}", path).replace("{name}", name).replace("{schema}", schema)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"wrote {path}; next: lfm validate {path}")
    if not Path(SCHEMA_FILE).exists():
        click.echo("for completion in your editor: lfm schema --vscode")


@click.command("validate")
@config_argument
@allow_http_option
@friendly_errors
def validate_cmd(config_arg: str | None, config_opt: str | None) -> None:
    """Check a config against the schema and the cross-field rules."""
    from lfm.compiler.pipeline import analyze

    config = pick_config(config_arg, config_opt)
    analysis = analyze(config)
    print_diagnostics(analysis.diagnostics)
    click.echo(f"{config}: valid ({analysis.normalized.shape} shape)")


@click.command("explain")
@config_argument
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
@allow_http_option
@friendly_errors
def explain_cmd(config_arg: str | None, config_opt: str | None, as_json: bool) -> None:
    """Print every resolved value and why it has that value."""
    from lfm.compiler.explain import print_explanation
    from lfm.compiler.pipeline import analyze

    analysis = analyze(pick_config(config_arg, config_opt))
    print_explanation(analysis, as_json=as_json)


@click.command("compile")
@config_argument
@output_option
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 with a diff if the bundle is stale."
)
@click.option(
    "--strict",
    is_flag=True,
    help="Treat warnings (e.g. a job that will not fit the GPU) as errors.",
)
@allow_http_option
@friendly_errors
def compile_cmd(
    config_arg: str | None, config_opt: str | None, output: str | None, check: bool, strict: bool
) -> None:
    """Compile a config into a bundle (train.py, accelerate.yaml, lock file, ...)."""
    from lfm.compiler.pipeline import compile_config, default_bundle_dir
    from lfm.compiler.write import check_bundle, write_bundle

    config = pick_config(config_arg, config_opt)
    result = compile_config(config, output)
    bundle_dir = Path(output) if output else default_bundle_dir(result.analysis)
    warnings = [d for d in result.analysis.diagnostics if d.level == "warning"]
    strict_errors = [replace(d, level="error") for d in warnings if not d.about_this_machine]
    if strict and strict_errors:
        raise CompileError(strict_errors)
    print_diagnostics(warnings)
    if check:
        diffs = check_bundle(result.files, bundle_dir)
        if diffs:
            click.echo("".join(diffs), nl=False)
            click.echo(
                f"{bundle_dir} is stale: run `lfm compile {config} -o {bundle_dir}`", err=True
            )
            sys.exit(EXIT_ERROR)
        click.echo(f"{bundle_dir} is up to date")
        return
    warn_about_edits(write_bundle(result.files, bundle_dir), bundle_dir)
    _warn_about_stale_checkpoints(result, bundle_dir)
    run = " ".join(launch_command(result, bundle_dir))
    click.echo(f"wrote {bundle_dir}/ ({len(result.files)} files); run: {run}")


def _warn_about_stale_checkpoints(result: Any, bundle_dir: Path) -> None:
    """A recompiled bundle keeps its training output: say now, not when train.py starts, that
    checkpoints of the previous config will not be resumed."""
    from lfm.runtime.resume import stale_runs, summary

    output = Path(os.path.expanduser(result.plan.training.output_dir))
    config = json.loads(result.files["lfm.lock.json"])["model_config"]
    for folder, changes in stale_runs(bundle_dir / output, config).items():
        click.echo(
            f"warning: {folder} holds checkpoints of the previous config ({summary(changes)}); train.py "
            "will not resume them: move or delete that folder to train from scratch",
            err=True,
        )


@click.command("schema")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the schema to a file.")
@click.option(
    "--vscode",
    is_flag=True,
    help="Write .vscode/lfm.schema.json and map *.lfm.yaml and lfm.yaml to it in .vscode/settings.json.",
)
def schema_cmd(output: str | None, vscode: bool) -> None:
    """Print the model_config JSON Schema (or set an editor up with it)."""
    text = schema_text()
    if vscode:
        try:
            click.echo(configure_vscode(Path("."), text))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        return
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


COMMANDS = (init_cmd, validate_cmd, explain_cmd, compile_cmd, schema_cmd)
