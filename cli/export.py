"""`lfm export --merge`: an adapter merged into its base model (the work is lfm.runtime.export)."""

from __future__ import annotations

import click

from .common import needs_extra


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
@click.option(
    "--force",
    is_flag=True,
    help="Replace an earlier export in OUTPUT (only if lfm wrote all of it).",
)
@click.option("--no-verify", is_flag=True, help="Skip comparing merged logits with base + adapter.")
@needs_extra("training extra", "train")
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
    from lfm.runtime.errors import RuntimeConfigError
    from lfm.runtime.export import merge_adapter

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
