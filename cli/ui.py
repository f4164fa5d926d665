"""`lfm ui`: the web UI over the registry, training runs, evaluations, datasets and a server.

The app is :mod:`lfm.ui` (the ``ui`` extra), imported inside the command so that `lfm --help`
stays light.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from .common import needs_extra


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--api-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of `ROLE KEY` lines, as for lfm serve (read: every page; operate: also promote "
    "and rollback; admin); also LFM_SERVE_API_KEYS. Required to listen beyond this machine.",
)
@click.option(
    "--runs",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=".",
    show_default=True,
    help="Folder searched for training runs (bundles' output/) and eval_results.json.",
)
@click.option(
    "--datasets",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder searched for datasets made by `lfm dataset create` [default: --runs].",
)
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(file_okay=False),
    help="Registry directory [default: $LFM_REGISTRY, the config, or the user data dir].",
)
@click.option("--backend", type=click.Choice(["embedded", "mlflow"]), help="Registry backend.")
@click.option("--uri", help="MLflow tracking server URL (with --backend mlflow).")
@click.option(
    "--serve", "serve_url", help="A running lfm serve to watch, e.g. http://127.0.0.1:8000."
)
@click.option(
    "--serve-api-key-env",
    default="LFM_API_KEY",
    show_default=True,
    help="Environment variable holding a read key for --serve, when it has keys.",
)
@click.option(
    "--public-origin",
    envvar="LFM_UI_PUBLIC_ORIGIN",
    help="The https://HOST[:PORT] browsers reach the UI at, when a proxy in front of it rewrites "
    "the Host header (form posts are checked against it); also LFM_UI_PUBLIC_ORIGIN.",
)
@needs_extra("UI extras", "ui")
def ui_cmd(
    host: str,
    port: int,
    api_keys: Path | None,
    runs: Path,
    datasets: Path | None,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
    serve_url: str | None,
    serve_api_key_env: str,
    public_origin: str | None,
) -> None:
    """Serve the web UI: models (promote, rollback), runs with live curves, evaluations,
    datasets and a server's traffic."""
    import uvicorn
    from lfm.runtime.endpoints import loopback_host
    from lfm.ui.app import create_app
    from lfm.ui.auth import Keys, KeysError
    from lfm.ui.settings import Settings

    try:
        keys = Keys.load(api_keys)
    except KeysError as exc:
        raise click.ClickException(str(exc)) from None
    if not keys.enabled and not loopback_host(host):
        raise click.ClickException(
            f"--host {host} listens beyond this machine: give API keys (--api-keys FILE or "
            "LFM_SERVE_API_KEYS), or serve on 127.0.0.1"
        )
    if serve_url and not serve_url.startswith(("http://", "https://")):
        raise click.BadParameter("give an http:// or https:// URL", param_hint="--serve")
    if public_origin is not None:
        public_origin = _origin(public_origin)
    if registry_path is not None and backend != "mlflow" and not uri:
        _existing_registry(Path(registry_path))
    settings = Settings(
        keys=keys,
        runs=runs.resolve(),
        datasets=(datasets or runs).resolve(),
        registry=registry_path,
        backend=backend,
        uri=uri,
        serve_url=serve_url,
        serve_key=os.environ.get(serve_api_key_env) or None,
        public_origin=public_origin,
    )
    click.echo(
        f"lfm ui at http://{host}:{port}/"
        + ("" if keys.enabled else " (no API keys: this machine only)"),
        err=True,
    )
    if keys.enabled and not loopback_host(host):
        click.echo(
            f"warning: --host {host} serves the login form and its session cookie over plain "
            "HTTP: put a TLS proxy in front (the cookie is Secure only on https; see "
            "--public-origin), or keys can be read on the way",
            err=True,
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL given as --public-origin, or a usage error."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"give the URL browsers use, e.g. https://lfm.example.com, not {url!r}",
            param_hint="--public-origin",
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _existing_registry(path: Path) -> None:
    """A mistyped --registry must not become a new, empty registry (which `lfm list` would
    create): the UI only reads one, so it refuses a folder that holds none."""
    from lfm.registry.db import DB_FILE

    if not (path.expanduser() / DB_FILE).is_file():
        raise click.BadParameter(
            f"{path} holds no registry (no {DB_FILE}): check the path, or register a model "
            f"there first (lfm register --registry {path} ...)",
            param_hint="--registry",
        )
