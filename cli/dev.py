"""`lfm dev ...`: helpers for trying lfm without a model hub."""

from __future__ import annotations

import click

from .common import needs_extra


@click.group("dev")
def dev_group() -> None:
    """Developer helpers."""


@dev_group.command("tiny-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--chat-template", is_flag=True, help="Give the tokenizer a ChatML chat template.")
@click.option("--force", is_flag=True, help="Overwrite a non-empty DIRECTORY.")
@needs_extra("training extra", "train")
def tiny_model_cmd(directory: str, chat_template: bool, force: bool) -> None:
    """Build a few-MB Llama model and tokenizer from local text, for trying lfm on a CPU."""
    from lfm.runtime.errors import RuntimeConfigError
    from lfm.runtime.tiny import build_tiny_model

    try:
        path = build_tiny_model(directory, chat_template=chat_template, overwrite=force)
    except RuntimeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote a tiny Llama model and tokenizer to {path}")
