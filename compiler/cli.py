"""The `lfm` command line (and `llamafarm models ...`, the seed's spelling of the same commands).

Compile-side commands import no torch: only `dev tiny-model` imports the runtime, and `train`
runs the emitted script in a new process.
Every user mistake ends in one line per problem and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_dataset import create_dataset_cmd, dataset_group
from .cli_evaluate import evaluate_cmd
from .cli_registry import REGISTRY_COMMANDS
from .diagnostics import CompileError, Diagnostic
from .schema import schema_text

EXIT_ERROR = 1


def _print_diagnostics(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
    for d in diagnostics:
        click.echo(d.format(), err=True)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a CompileError into its diagnostics and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CompileError as exc:
            _print_diagnostics(exc.diagnostics)
            errors = sum(d.level == "error" for d in exc.diagnostics)
            click.echo(f"{errors} error{'s' if errors != 1 else ''}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


def _config_argument(command: Callable[..., Any]) -> Callable[..., Any]:
    """CONFIG as an argument (`lfm compile my.yaml`) or as --config (the seed's spelling)."""
    command = click.argument("config_arg", metavar="CONFIG", required=False, type=click.Path())(
        command
    )
    command = click.option(
        "--config", "config_opt", type=click.Path(), help="The config file (same as CONFIG)."
    )(command)
    return command


_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Bundle directory [default: build/NAME].",
)


def _pick_config(config_arg: str | None, config_opt: str | None) -> str:
    if config_arg and config_opt and config_arg != config_opt:
        raise click.UsageError("give the config once: as CONFIG or as --config")
    config = config_arg or config_opt
    if not config:
        raise click.UsageError("missing CONFIG (a model_config YAML or JSON file)")
    return config


@click.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init_cmd(path: str, force: bool) -> None:
    """Write a commented starter config to PATH."""
    from importlib import resources

    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in target.stem) or "my_model"
    from .editor import SCHEMA_FILE

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
@_config_argument
@friendly_errors
def validate_cmd(config_arg: str | None, config_opt: str | None) -> None:
    """Check a config against the schema and the cross-field rules."""
    from .pipeline import analyze

    config = _pick_config(config_arg, config_opt)
    analysis = analyze(config)
    _print_diagnostics(analysis.diagnostics)
    click.echo(f"{config}: valid ({analysis.normalized.shape} shape)")


@click.command("explain")
@_config_argument
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
@friendly_errors
def explain_cmd(config_arg: str | None, config_opt: str | None, as_json: bool) -> None:
    """Print every resolved value and why it has that value."""
    from .explain import print_explanation
    from .pipeline import analyze

    analysis = analyze(_pick_config(config_arg, config_opt))
    print_explanation(analysis, as_json=as_json)


@click.command("compile")
@_config_argument
@_output_option
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 with a diff if the bundle is stale."
)
@click.option(
    "--strict",
    is_flag=True,
    help="Treat warnings (e.g. a job that will not fit the GPU) as errors.",
)
@friendly_errors
def compile_cmd(
    config_arg: str | None, config_opt: str | None, output: str | None, check: bool, strict: bool
) -> None:
    """Compile a config into a bundle (train.py, accelerate.yaml, lock file, ...)."""
    from .pipeline import compile_config, default_bundle_dir
    from .write import check_bundle, write_bundle

    config = _pick_config(config_arg, config_opt)
    result = compile_config(config, output)
    bundle_dir = Path(output) if output else default_bundle_dir(result.analysis)
    warnings = [d for d in result.analysis.diagnostics if d.level == "warning"]
    strict_errors = [replace(d, level="error") for d in warnings if not d.about_this_machine]
    if strict and strict_errors:
        raise CompileError(strict_errors)
    _print_diagnostics(warnings)
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
    write_bundle(result.files, bundle_dir)
    _warn_about_stale_checkpoints(result, bundle_dir)
    run = " ".join(_launch_command(result, bundle_dir))
    click.echo(f"wrote {bundle_dir}/ ({len(result.files)} files); run: {run}")


def _launch_command(result: Any, bundle_dir: Path, python: str | None = None) -> list[str]:
    """How the bundle runs (to show the user, or with ``python`` to run it here): one process,
    or accelerate's launcher with the bundle's accelerate.yaml for a multi-process bundle."""
    train = str(bundle_dir / "train.py")
    if not result.plan.distributed.multi_process:
        return [python or "python", train]
    launcher = [python, "-m", "accelerate.commands.launch"] if python else ["accelerate", "launch"]
    return [*launcher, "--config_file", str(bundle_dir / "accelerate.yaml"), train]


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
        from .editor import configure_vscode

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


@click.command("train")
@_config_argument
@_output_option
@click.option(
    "--dataset",
    type=click.Path(),
    help="Train on this JSONL/JSON file instead of the config's dataset.",
)
@friendly_errors
def train_cmd(
    config_arg: str | None, config_opt: str | None, output: str | None, dataset: str | None
) -> None:
    """Compile a config and run its train.py (the seed's `models train`)."""
    from .pipeline import Override, analyze, compile_analysis, default_bundle_dir
    from .write import write_bundle

    config = _pick_config(config_arg, config_opt)
    overrides: tuple[Override, ...] = ()
    if dataset and not Path(dataset).exists():
        # Checked before compiling: otherwise a bundle is written and the run fails at loading.
        raise click.ClickException(f"--dataset {dataset} does not exist")
    if dataset:
        # The flag's path is relative to where the user is; config paths are relative to the config.
        relative = Path(
            os.path.relpath(os.path.abspath(dataset), os.path.abspath(Path(config).parent))
        )
        path = relative.as_posix() if relative.parts[0] == ".." else f"./{relative.as_posix()}"
        reason = f"--dataset {dataset} on the command line"
        overrides = (
            Override(("dataset", "source", "type"), "local", reason),
            Override(("dataset", "source", "path"), path, reason),
        )
    analysis = analyze(config, overrides)
    bundle_dir = Path(output) if output else default_bundle_dir(analysis)
    if dataset and not output:
        # Not the config's own bundle, which `compile --check` compares with the config: a sibling.
        bundle_dir = bundle_dir.with_name(f"{bundle_dir.name}-{Path(dataset).stem}")
    result = compile_analysis(analysis, bundle_dir)
    _print_diagnostics([d for d in result.analysis.diagnostics if d.level == "warning"])
    write_bundle(result.files, bundle_dir)
    command = _launch_command(result, bundle_dir, sys.executable)
    click.echo(f"wrote {bundle_dir}/; training: {' '.join(command)}")
    try:
        sys.exit(subprocess.call(command))
    except KeyboardInterrupt:  # train.py says what to do next; no second message here
        sys.exit(130)


@click.command("export")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A trained adapter: the output directory of a training run.",
)
@click.option(
    "--merge", is_flag=True, help="Merge the adapter into its base model (the only export so far)."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Where to write the merged model.",
)
@click.option(
    "--base", help="Base model (hub id or directory) [default: the one the adapter was trained on]."
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default="float32",
    show_default=True,
)
@click.option("--force", is_flag=True, help="Replace a non-empty OUTPUT.")
@click.option("--no-verify", is_flag=True, help="Skip comparing merged logits with base + adapter.")
def export_cmd(
    model_dir: str,
    merge: bool,
    output: str,
    base: str | None,
    dtype: str,
    force: bool,
    no_verify: bool,
) -> None:
    """Merge a LoRA/DoRA/(IA)^3-family adapter into its base: safetensors any HF loader reads."""
    if not merge:
        raise click.UsageError("say what to export: --merge (merge the adapter into its base)")
    try:
        from lfm.runtime.errors import RuntimeConfigError
        from lfm.runtime.export import merge_adapter
    except ImportError as exc:
        raise click.ClickException(
            f"{exc}; install the training extra: pip install 'lfm[train]'"
        ) from None
    try:
        report = merge_adapter(
            model_dir, output, base_model=base, dtype=dtype, overwrite=force, verify=not no_verify
        )
    except RuntimeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    check = (
        ""
        if report.max_logit_difference is None
        else (f"; merged vs base+adapter: max logit difference {report.max_logit_difference:.2e}")
    )
    click.echo(f"wrote the merged model to {report.output_dir}{check}")


@click.group("dev")
def dev_group() -> None:
    """Developer helpers."""


@dev_group.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--chat-template", is_flag=True, help="Give the tokenizer a ChatML chat template.")
@click.option("--force", is_flag=True, help="Overwrite a non-empty DIRECTORY.")
def tiny_model_cmd(directory: str, chat_template: bool, force: bool) -> None:
    """Build a few-MB Llama model and tokenizer from local text, for trying lfm on a CPU."""
    try:
        from lfm.runtime.errors import RuntimeConfigError
        from lfm.runtime.tiny import build_tiny_model
    except ImportError as exc:  # the base install has no torch/transformers
        raise click.ClickException(
            f"{exc}; install the training extra: pip install 'lfm[train]'"
        ) from None

    try:
        path = build_tiny_model(directory, chat_template=chat_template, overwrite=force)
    except RuntimeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote a tiny Llama model and tokenizer to {path}")


from .cli_deploy import deploy_cmd  # noqa: E402  (its own module: lfm deploy)

COMMANDS = (
    init_cmd,
    validate_cmd,
    explain_cmd,
    compile_cmd,
    schema_cmd,
    train_cmd,
    export_cmd,
    evaluate_cmd,
    deploy_cmd,
    dev_group,
    *REGISTRY_COMMANDS,
    dataset_group,
    create_dataset_cmd,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lfm")
def lfm() -> None:
    """lfm: compile one model_config into a reviewable, runnable fine-tuning bundle."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llamafarm")
def llamafarm() -> None:
    """LlamaFarm's spelling of lfm: `llamafarm models <command>`."""


@llamafarm.group("models")
def models() -> None:
    """Model fine-tuning and management (the same commands as `lfm`)."""


for _command in COMMANDS:
    lfm.add_command(_command)
    models.add_command(_command)
