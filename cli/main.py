"""The `lfm` command line (and `llamafarm models ...`, the seed's spelling of the same commands).

One module per command group, each a thin layer: it parses options, calls one library package
(lfm.compiler, lfm.dataset, lfm.registry, lfm.deploy, lfm.serving, lfm.ui, lfm.runtime) and prints. Heavy packages
are imported inside the commands that need them, so `lfm --help` and the compile-side commands
stay light. Every user mistake ends in one line per problem and exit status 1, never a traceback.
"""

from __future__ import annotations

import click
from lfm.runtime import __version__

from . import compile as compile_commands
from .chat import chat_cmd
from .dataset import create_dataset_cmd, dataset_group
from .deploy import deploy_cmd
from .dev import dev_group
from .evaluate import evaluate_cmd
from .export import export_cmd
from .registry import REGISTRY_COMMANDS
from .rollout import rollout_group
from .serve import serve_cmd, swap_adapter_cmd
from .sweep import sweep_cmd
from .train import train_cmd
from .ui import ui_cmd

COMMANDS = (
    *compile_commands.COMMANDS,
    train_cmd,
    sweep_cmd,
    export_cmd,
    evaluate_cmd,
    deploy_cmd,
    serve_cmd,
    swap_adapter_cmd,
    rollout_group,
    ui_cmd,
    chat_cmd,
    dev_group,
    *REGISTRY_COMMANDS,
    dataset_group,
    create_dataset_cmd,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lfm")
def lfm() -> None:
    """lfm: compile one model_config into a reviewable, runnable fine-tuning bundle."""
    _quiet()


def _quiet() -> None:
    """The third-party notices no user can act on stay off the terminal in every command, also
    those logged while a command imports the training stack (lfm.runtime.quiet: logging and
    warnings filters only, nothing heavy is imported)."""
    from lfm.runtime.quiet import quiet_third_party

    quiet_third_party()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llamafarm")
def llamafarm() -> None:
    """LlamaFarm's spelling of lfm: `llamafarm models <command>`."""
    _quiet()


@llamafarm.group("models")
def models() -> None:
    """Model fine-tuning and management (the same commands as `lfm`)."""


for _command in COMMANDS:
    lfm.add_command(_command)
    models.add_command(_command)
