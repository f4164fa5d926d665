"""`lfm deploy` (and `llamafarm models deploy`): serving artifacts for a trained model."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import click
from lfm.deploy import (
    DeployError,
    deploy_plan,
    render_deployment,
    resolve_model_reference,
    write_deployment,
)


@click.command("deploy")
@click.option(
    "--model",
    "reference",
    required=True,
    help="A trained model: a training output directory (LoRA adapter) or a merged/full model.",
)
@click.option(
    "--target",
    type=click.Choice(["kubernetes", "docker"]),
    default="kubernetes",
    show_default=True,
    help="kubernetes: Dockerfile.serve + k8s/ manifests; docker: Dockerfile.serve only.",
)
@click.option(
    "--base",
    help="An adapter's base model: a hub id or a local directory [default: the one its "
    "adapter_config.json names].",
)
@click.option("--replicas", type=click.IntRange(min=0), help="Serving replicas.")
@click.option(
    "--version",
    "version",
    help="The version to tag the image with [default: the trained config's, or the registry's].",
)
@click.option(
    "--apply",
    is_flag=True,
    help="kubernetes: kubectl apply the manifests; docker: docker build the image.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Where to write [default: deploy/NAME].",
)
@click.option("--force", is_flag=True, help="Replace a non-empty OUTPUT.")
def deploy_cmd(
    reference: str,
    target: str,
    base: str | None,
    replicas: int | None,
    version: str | None,
    apply: bool,
    output: str | None,
    force: bool,
) -> None:
    """Write the serving image and manifests (vLLM, OpenAI API) for a trained model."""
    try:
        model = resolve_model_reference(reference)
        if base and model.kind != "lora":
            raise DeployError(f"--base is for an adapter; {reference} is a whole model")
        if base:
            model = replace(model, base_model=base)
        if version:
            model = replace(model, version=version)
        plan = deploy_plan(model, target, replicas)
        out_dir = Path(output or Path("deploy") / plan.deployment.kube.app)
        write_deployment(model, render_deployment(plan), out_dir, force=force)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    image = plan.deployment.kube.serve_image
    build = f"docker build -f {out_dir}/Dockerfile.serve -t {image} {out_dir}"
    click.echo(f"wrote {out_dir}/ ({model.kind} {model.name} {model.version})")
    if not apply:
        click.echo(f"next: {build}")
        if target == "kubernetes":
            click.echo(f"      docker push {image} && kubectl apply -f {out_dir}/k8s")
        return
    if target == "docker":
        _run_or_explain(["docker", "info"], "no Docker daemon is reachable", build)
        _run(
            ["docker", "build", "-f", str(out_dir / "Dockerfile.serve"), "-t", image, str(out_dir)]
        )
        return
    _run_or_explain(
        ["kubectl", "config", "current-context"],
        "no Kubernetes cluster is configured (kubectl has no current context)",
        f"kubectl apply -f {out_dir}/k8s",
    )
    _run(["kubectl", "apply", "-f", str(out_dir / "k8s")])


def _run_or_explain(probe: list[str], problem: str, later: str) -> None:
    """Check that the tool and its target exist before acting; otherwise say what to run later."""
    if shutil.which(probe[0]) is None:
        problem = f"{probe[0]} is not installed"
    elif subprocess.run(probe, capture_output=True).returncode == 0:
        return
    raise click.ClickException(f"--apply: {problem}; the files are written, run later: {later}")


def _run(command: list[str]) -> None:
    click.echo("$ " + " ".join(command))
    status = subprocess.call(command)
    if status:
        raise click.ClickException(f"{command[0]} exited with status {status}")
