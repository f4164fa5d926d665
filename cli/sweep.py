"""`lfm sweep`: compile a config with a `sweep` block, run its sweep.py, write the best config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from .common import (
    allow_http_option,
    config_argument,
    friendly_errors,
    output_option,
    pick_config,
    print_diagnostics,
    trust_code_option,
    warn_about_edits,
)
from .registry import opened_registry, registry_options


@click.command("sweep")
@config_argument
@output_option
@click.option(
    "--workers", type=click.IntRange(min=1), help="Worker processes [default: sweep.parallelism]."
)
@click.option(
    "--best-config",
    type=click.Path(dir_okay=False),
    help="Where to write the best trial's config [default: CONFIG's name + .best.yaml, beside it].",
)
@click.option("--force", is_flag=True, help="Replace an existing best-config file without asking.")
@click.option(
    "--register",
    is_flag=True,
    help="Register the best trial's model in the registry as the config's NAME:VERSION, "
    "its swept values as tags.",
)
@registry_options
@trust_code_option
@allow_http_option
@friendly_errors
def sweep_cmd(
    config_arg: str | None,
    config_opt: str | None,
    output: str | None,
    workers: int | None,
    best_config: str | None,
    force: bool,
    register: bool,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """Run a config's hyperparameter sweep (Optuna) and write the best trial's config.

    Started again after an interruption, the study resumes: finished trials are kept.
    With --register, the best trial's adapter is registered (lfm list, promote, serve)."""
    from lfm.compiler.best_config import best_config_path, best_config_text
    from lfm.compiler.pipeline import analyze, compile_analysis, default_bundle_dir
    from lfm.compiler.write import write_bundle

    from .train import _run_environment

    config = Path(pick_config(config_arg, config_opt))
    analysis = analyze(config)
    if not analysis.resolved.derived.get("sweep"):
        raise click.ClickException(f"{config} has no sweep block: add `sweep:` under model_config")
    # Checked before hours of trials, not after them.
    target = Path(best_config) if best_config else best_config_path(config)
    check_target(target, config, force)
    bundle_dir = Path(output) if output else default_bundle_dir(analysis)
    result = compile_analysis(analysis, bundle_dir)
    print_diagnostics([d for d in analysis.diagnostics if d.level == "warning"])
    warn_about_edits(write_bundle(result.files, bundle_dir), bundle_dir)
    command = [sys.executable, str(bundle_dir / "sweep.py")]
    if workers:
        command += ["--workers", str(workers)]
    click.echo(f"wrote {bundle_dir}/; sweeping: {' '.join(command)}")
    status = run_sweep(command, _run_environment(analysis))
    if status != 0:
        sys.exit(status)
    training = result.plan.training
    output_dir = (
        Path(training.output_dir).expanduser()
        if training.output_is_absolute
        else bundle_dir / training.output_dir
    )
    report_path = output_dir / "sweep" / "report.json"  # written by lfm.runtime.sweep_report
    report = json.loads(report_path.read_text(encoding="utf-8"))
    best = report.get("best")
    if not best:
        raise click.ClickException(f"no trial completed; see {report_path}")
    note = (
        f"The best of {len(report['trials'])} trials of {config.name}'s sweep (trial "
        f"{best['number']}, {report['objective']} {best['value']:.6g}), written by lfm sweep.\n"
        f"Its trained model: {_relative(Path(best['output_dir']), config)}\n"
        f"Report: {_relative(report_path, config)}"
    )
    target.write_text(best_config_text(config, best["values"], note=note), encoding="utf-8")
    click.echo(f"best trial {best['number']}: {report['objective']} {best['value']:.6g}")
    for path, value in sorted(best["values"].items()):
        click.echo(f"  {path}: {value}")
    click.echo(f"wrote {target} (the best values) and {report_path}")
    if register:
        where = (registry_path, backend, uri)
        register_best(Path(best["output_dir"]), bundle_dir, report, where)


def register_best(
    trial_dir: Path,
    bundle_dir: Path,
    report: dict[str, Any],
    where: tuple[str | None, str | None, str | None],
) -> None:
    """The best trial's output as NAME:VERSION of the bundle, with the bundle's lineage, the
    trial's metrics, and tags saying which trial and which values won."""
    try:
        from lfm.registry import RegistryError
        from lfm.registry.prepare import prepare
    except ImportError:
        raise click.ClickException(
            "--register needs the registry extra: pip install 'lfm[registry]'"
        ) from None
    best = report["best"]
    tags = {
        "sweep.trial": str(best["number"]),
        f"sweep.{report['objective']}": f"{best['value']:.6g}",
        **{f"sweep.{path}": str(value) for path, value in sorted(best["values"].items())},
    }
    retry = f"register it later with: lfm register {trial_dir} --bundle {bundle_dir}"
    try:
        request = prepare(trial_dir, bundle_dir=bundle_dir, tags=tags)
        with opened_registry(*where) as store:
            record, created = store.register(request)
    except (RegistryError, click.ClickException) as exc:
        message = exc.message if isinstance(exc, click.ClickException) else str(exc)
        raise click.ClickException(
            f"the sweep is done, but not registered: {message}; {retry}"
        ) from None
    click.echo(
        f"registered the best trial as {record.name}:{record.version}"
        if created
        else f"{record.name}:{record.version} is already registered with identical content"
    )


def check_target(target: Path, config: Path, force: bool) -> None:
    """The best config never replaces the config itself; another file only when the user
    says so (--force, or yes on a terminal)."""
    if target.resolve() == config.resolve():
        raise click.ClickException(
            f"--best-config {target} is the config itself: give another file"
        )
    if not target.exists() or force:
        return
    question = f"{target} exists: replace it with the sweep's best config when the sweep ends?"
    if sys.stdin.isatty() and click.confirm(question, default=False):
        return
    raise click.ClickException(f"{target} exists: pass --force to replace it, or --best-config")


def _relative(path: Path, config: Path) -> str:
    """``path`` as seen from the config's folder: the header holds no machine's own paths."""
    return Path(os.path.relpath(path.resolve(), config.resolve().parent)).as_posix()


def run_sweep(command: list[str], environment: dict[str, str]) -> int:
    """sweep.py's exit status. On Ctrl-C it gets the interrupt too (or is sent one) and is
    waited for, so it records its running trial and says how to resume."""
    import signal

    process = subprocess.Popen(command, env=environment)
    try:
        return process.wait()
    except KeyboardInterrupt:
        if not _terminal_interrupted_both():
            process.send_signal(signal.SIGINT)
        try:
            process.wait()
        except KeyboardInterrupt:  # a second Ctrl-C: stop now
            process.kill()
        sys.exit(130)


def _terminal_interrupted_both() -> bool:
    """Whether the interrupt was a Ctrl-C on the terminal, which signals sweep.py as well (a
    second one would cut its bookkeeping short)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return False
