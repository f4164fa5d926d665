"""`lfm train` (the seed's `models train`): compile a config, then run its train.py here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (
    allow_http_option,
    config_argument,
    friendly_errors,
    launch_command,
    output_option,
    pick_config,
    print_diagnostics,
    trust_code_option,
    warn_about_edits,
)

if TYPE_CHECKING:
    from lfm.compiler.pipeline import Analysis


def _run_environment(analysis: Analysis) -> dict[str, str]:
    """This environment, plus the secrets the config holds and the bundle must not: train.py
    reads the alert webhook from LFM_ALERT_WEBHOOK_URL (a value already there wins)."""
    from lfm.runtime.endpoints import WEBHOOK_ENV

    environment = dict(os.environ)
    config = analysis.normalized.data.get("model_config", {})
    webhook = config.get("monitoring", {}).get("alerting", {}).get("webhook_url")
    if isinstance(webhook, str):
        environment.setdefault(WEBHOOK_ENV, webhook)
    return environment


@click.command("train")
@config_argument
@output_option
@click.option(
    "--dataset",
    type=click.Path(),
    help="Train on this JSONL/JSON file instead of the config's dataset.",
)
@trust_code_option
@allow_http_option
@friendly_errors
def train_cmd(
    config_arg: str | None, config_opt: str | None, output: str | None, dataset: str | None
) -> None:
    """Compile a config and run its train.py (the seed's `models train`)."""
    from lfm.compiler.pipeline import Override, analyze, compile_analysis, default_bundle_dir
    from lfm.compiler.write import write_bundle

    config = pick_config(config_arg, config_opt)
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
    print_diagnostics([d for d in result.analysis.diagnostics if d.level == "warning"])
    warn_about_edits(write_bundle(result.files, bundle_dir), bundle_dir)
    command = launch_command(result, bundle_dir, sys.executable)
    click.echo(f"wrote {bundle_dir}/; training: {' '.join(command)}")
    try:
        sys.exit(subprocess.call(command, env=_run_environment(analysis)))
    except KeyboardInterrupt:  # train.py says what to do next; no second message here
        sys.exit(130)
