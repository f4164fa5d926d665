"""`lfm serve` and `lfm swap-adapter`: run a model with hot-swappable adapters, and swap them.

The server is :mod:`lfm.serving` (the ``serve`` extra, with ``train``), imported inside the
commands so that `lfm --help` stays light.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from .common import friendly_errors, needs_extra

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


@click.command("serve")
@click.argument("model", required=False)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME=REF",
    help="Serve an adapter as NAME: a training output folder, name:version, or name@ENV (which "
    "follows that registry environment). Repeatable.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--api-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of `ROLE KEY` lines (roles: read, operate, admin); also LFM_SERVE_API_KEYS. "
    "Required to listen beyond this machine.",
)
@click.option("--served-name", help="The base model's name in requests [default: its folder's].")
@click.option(
    "--max-batch",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Requests decoded together (any mix of adapters).",
)
@click.option(
    "--follow-interval",
    type=click.FloatRange(0.2),
    default=5.0,
    show_default=True,
    help="Seconds between checks of the registry for adapters named name@ENV.",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="Weights' precision (auto: bfloat16 on a GPU, float32 on the CPU).",
)
@click.option(
    "--threads",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="CPU threads for the model (0: torch's choice, every core). On a machine shared with "
    "other work, fewer threads avoid torch's threads spinning while they wait for each other.",
)
@click.option(
    "--embedding",
    "embedding_models",
    multiple=True,
    metavar="NAME=REF",
    help="Also answer POST /v1/embeddings for NAME: a sentence-transformers model trained with "
    "task: embedding (a folder or name:version). Repeatable; without MODEL, the server serves "
    "embedding models alone.",
)
@click.option(
    "--feedback-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where POST /v1/feedback appends its ratings, one JSON object a line "
    "[default: feedback.jsonl in lfm's user data folder].",
)
@click.option(
    "--feedback-text",
    is_flag=True,
    help="Also write each rated answer's prompt and text to the feedback log (for `lfm dataset "
    "from-feedback`); off by default, as they may hold what users typed.",
)
@friendly_errors
@needs_extra("serving extras", "train,serve")
def serve_cmd(
    model: str | None,
    adapters: tuple[str, ...],
    host: str,
    port: int,
    api_keys: Path | None,
    served_name: str | None,
    max_batch: int,
    follow_interval: float,
    dtype: str,
    threads: int,
    feedback_log: Path | None,
    feedback_text: bool = False,
    embedding_models: tuple[str, ...] = (),
) -> None:
    """Serve MODEL (a model folder, a training output, a registry reference, or a bundle's
    config) with an OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/models,
    and vLLM's /v1/load_lora_adapter and /v1/unload_lora_adapter for hot swaps. With
    --embedding NAME=REF and no MODEL: embedding models alone, on /v1/embeddings."""
    import uvicorn
    from lfm.runtime.endpoints import loopback_host
    from lfm.runtime.errors import RuntimeConfigError
    from lfm.serving.adapters import AdapterError
    from lfm.serving.app import create_app
    from lfm.serving.auth import KeyError_, Keys
    from lfm.serving.server import AdapterSpec, ModelServer, base_of

    try:
        keys = Keys.load(api_keys)
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from None
    if not keys.enabled and not loopback_host(host):
        raise click.ClickException(
            f"--host {host} listens beyond this machine: give API keys (--api-keys FILE or "
            "LFM_SERVE_API_KEYS), or serve on 127.0.0.1"
        )
    specs = [_adapter_spec(text) for text in adapters]
    embeddings = _embedding_specs(embedding_models, ModelServer.valid_name)
    if model is None and not specs and not embeddings:
        raise click.UsageError(
            "give a MODEL, --adapter NAME=REF (its base model is served), or --embedding "
            "NAME=REF (embedding models alone)"
        )
    if threads:
        import torch

        torch.set_num_threads(threads)
    _log_requests()  # from the start: the adapters loaded at startup are lines too
    alone = _embedding_model(model, served_name) if model is not None and not specs else None
    if alone:  # MODEL is itself an embedding model: served alone, under its own name
        if not ModelServer.valid_name(alone[0]):
            raise click.UsageError(
                f"{model}: {alone[0]!r} is not a valid model name; name it with --served-name"
            )
        embeddings.insert(0, alone)
        model = served_name = None
    if model is None and not specs:
        if served_name:
            raise click.UsageError(
                "--served-name names the base model, and there is none: with --embedding alone "
                "each NAME is its model's name"
            )
        _serve_embeddings_only(embeddings, keys, host, port)
        return
    try:
        base, own = _what_to_serve(model, specs, base_of)
        specs = own + specs
        # Before the base model loads: a mistake in --embedding costs no wait.
        _check_embeddings(embeddings, [name for name, _ in specs], served_name or base)
        server = ModelServer(
            base,
            [AdapterSpec(name, ref) for name, ref in specs],
            keys=keys,
            served_name=served_name,
            max_batch=max_batch,
            follow_interval=follow_interval,
            dtype=dtype,
            feedback_log=feedback_log or _default_feedback_log(),
            feedback_text=feedback_text,
        )
    except (AdapterError, RuntimeConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    _load_embeddings(server.embeddings, embeddings)
    click.echo(
        _serving_line(server, f"http://{host}:{port}/v1")
        + ("" if keys.enabled else " (no API keys: this machine only)"),
        err=True,
    )
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning")


def _serving_line(server: Any, url: str) -> str:
    """What a server with a generative model serves, and where: its embedding models too."""
    names = ", ".join(a.name for a in server.adapters.live()) or "none"
    line = f"serving {server.base_name} (adapters: {names}) at {url}"
    embedding = server.embeddings.names()
    if embedding:
        line += f", and embedding models {', '.join(embedding)} at {url}/embeddings"
    return line


def _serve_embeddings_only(
    embeddings: list[tuple[str, str]], keys: Any, host: str, port: int
) -> None:
    """--embedding without a MODEL: a server of embedding models alone (no generative model
    loads; the generation routes answer that this server has none)."""
    import uvicorn
    from lfm.serving.embedding_server import EmbeddingServer, create_embedding_app

    _check_embeddings(embeddings, [], None)
    server = EmbeddingServer(keys)
    _load_embeddings(server.embeddings, embeddings)
    click.echo(
        f"serving embedding models {', '.join(server.embeddings.names())} at "
        f"http://{host}:{port}/v1/embeddings"
        + ("" if keys.enabled else " (no API keys: this machine only)"),
        err=True,
    )
    uvicorn.run(create_embedding_app(server), host=host, port=port, log_level="warning")


def _load_embeddings(models: Any, embeddings: list[tuple[str, str]]) -> None:
    """Each --embedding NAME=REF into ``models`` (an EmbeddingModels); a failure is one message."""
    from lfm.runtime.errors import RuntimeConfigError

    for name, reference in embeddings:
        try:
            models.load(name, reference)
        except (ValueError, OSError, RuntimeConfigError) as exc:
            raise click.ClickException(str(exc)) from None


def _default_feedback_log() -> Path:
    try:
        import platformdirs
    except ImportError:  # without the registry extra: beside where the server runs
        return Path("lfm-feedback.jsonl")
    return Path(platformdirs.user_data_dir("lfm")) / "feedback.jsonl"


def _log_requests() -> None:
    """One line per answered request (which adapter version answered) and per swap, on stderr."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("lfm.serving")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _adapter_spec(text: str) -> tuple[str, str]:
    name, sep, reference = text.partition("=")
    if not sep or not name or not reference:
        raise click.UsageError(
            f"--adapter {text}: write NAME=REF, e.g. support=support_bot@production"
        )
    return name, reference


def _embedding_specs(texts: tuple[str, ...], valid_name: Any) -> list[tuple[str, str]]:
    """--embedding NAME=REF values: each written so, each NAME valid and given once."""
    specs: list[tuple[str, str]] = []
    for text in texts:
        name, sep, reference = text.partition("=")
        if not sep or not name or not reference:
            raise click.UsageError(
                f"--embedding {text}: write NAME=REF, e.g. retriever=retriever:1.0.0"
            )
        if not valid_name(name):
            raise click.UsageError(
                f"--embedding {text}: {name!r} is not a valid model name (letters, digits, "
                "'.', '_' and '-', starting with a letter or digit, at most 128 characters)"
            )
        if name in (n for n, _ in specs):
            raise click.UsageError(f"--embedding {name}=...: the name {name!r} is given twice")
        specs.append((name, reference))
    return specs


def _check_embeddings(
    embeddings: list[tuple[str, str]], adapters: list[str], base: str | None
) -> None:
    """Each embedding model's name is its own, and its folder a sentence-transformers model."""
    from lfm.serving.embeddings import resolve

    # As ModelServer names the base model (None: embedding models alone, no base model).
    base_name = (Path(base.rstrip("/")).name or base) if base else None
    seen: set[str] = set()
    for name, reference in embeddings:
        if name in seen:  # MODEL itself (an embedding model) and an --embedding of its name
            raise click.UsageError(
                f"--embedding {name}={reference}: {name!r} is MODEL's name already; pick "
                "another NAME (or name MODEL with --served-name)"
            )
        seen.add(name)
        if name in adapters or name == base_name:
            what = "an adapter" if name in adapters else "the base model"
            raise click.UsageError(
                f"--embedding {name}={reference}: {name!r} is already {what}'s name; pick "
                "another NAME"
            )
        try:
            resolve(name, reference)
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None


def _what_to_serve(
    model: str | None, specs: list[tuple[str, str]], base_of: Any
) -> tuple[str, list[tuple[str, str]]]:
    """(the base model, adapters MODEL itself brings) from the MODEL argument."""
    if model is None:
        return base_of(specs[0][1]), []
    if Path(model).suffix in CONFIG_SUFFIXES and Path(model).is_file():
        return _from_config(model)
    from lfm.deploy import DeployError, resolve_model_reference

    try:
        resolved = resolve_model_reference(model)
    except DeployError:
        return model, []  # a hub id: the loader says whether it can be had
    if resolved.kind == "lora":
        return str(resolved.base_model), [(resolved.name, model)]
    return str(resolved.path), []


def _embedding_model(model: str, served_name: str | None) -> tuple[str, str] | None:
    """(name, reference) when MODEL is an embedding model: a task: embedding config (its
    trained output), a sentence-transformers folder or a registered one; None otherwise."""
    if Path(model).suffix in CONFIG_SUFFIXES and Path(model).is_file():
        settings, _, bundle, output = _config_output(model)
        if settings.get("task") != "embedding":
            return None
        if not (output / "modules.json").is_file():
            raise click.ClickException(_not_trained(model, bundle, output, "embedding model"))
        return served_name or settings["name"], str(output)
    from lfm.deploy import DeployError, resolve_model_reference

    if Path(model).expanduser().is_dir():
        if not (Path(model).expanduser() / "modules.json").is_file():
            return None
        try:
            resolved = resolve_model_reference(model)  # a folder: its name from its lock file
        except DeployError:
            return None  # not a model at all: serving it as a generative one says why
        return served_name or resolved.name, model
    # A registry reference: its record says what it is, before any file is copied or hashed
    # (the generative model it may be is resolved once, by the server).
    record = _registered(model)
    if record is not None and record.type == "embedding":
        return served_name or record.name, model
    return None


def _registered(reference: str) -> Any:
    """The registry's record of ``reference`` (its files untouched), or None: not a registry
    reference, no registry extra, or not registered (the server then says what it is)."""
    from lfm.deploy.models import REGISTRY_NAME, REGISTRY_REFERENCE

    if not (REGISTRY_REFERENCE.fullmatch(reference) or REGISTRY_NAME.fullmatch(reference)):
        return None
    try:
        from lfm.registry import RegistryError, open_registry
    except ImportError:
        return None
    try:
        store = open_registry()
        try:
            return store.get(reference, with_files=False)
        finally:
            store.close()
    except (RegistryError, OSError):
        return None


def _config_output(config: str) -> tuple[dict[str, Any], str, Path, Path]:
    """A bundle's config: (its resolved settings, its base model, the bundle folder `lfm compile
    CONFIG` writes by default, where that bundle's train.py writes)."""
    from lfm.compiler.pipeline import analyze, compile_analysis, default_bundle_dir

    analysis = analyze(config)
    settings = analysis.resolved.config
    base = settings["base_model"]
    if analysis.resolved.derived.get("base_model_source") == "local":
        base = str((Path(config).parent / base).resolve())
    # Where the bundle's train.py writes (the plan knows: relative to the bundle, or absolute).
    bundle = default_bundle_dir(analysis)
    output = bundle / Path(compile_analysis(analysis, bundle).plan.training.output_dir).expanduser()
    return settings, base, bundle, output


def _not_trained(config: str, bundle: Path, output: Path, what: str) -> str:
    """Why `lfm serve CONFIG` found no trained model. It can only look in the bundle that `lfm
    compile CONFIG` writes by default: one compiled with -o elsewhere is served by its folder."""
    if not output.is_relative_to(bundle):  # an absolute output_dir: any bundle writes there
        return f"{output} holds no trained {what} yet: run the bundle's train.py first"
    inside = output.relative_to(bundle).as_posix()
    return (
        f"{output} holds no trained {what} yet. `lfm serve {config}` looks in the bundle that "
        f"`lfm compile {config}` writes by default ({bundle}/); for a bundle compiled elsewhere "
        f"(-o BUNDLE), serve its trained output: lfm serve BUNDLE/{inside}; otherwise run "
        f"{bundle}/train.py first"
    )


def _from_config(config: str) -> tuple[str, list[tuple[str, str]]]:
    """A bundle's config: its base model, and its trained adapter once training wrote it."""
    settings, base, bundle, output = _config_output(config)
    if (output / "adapter_config.json").is_file():
        return base, [(settings["name"], str(output))]
    click.echo(f"note: {_not_trained(config, bundle, output, 'adapter')}", err=True)
    click.echo("note: serving the base model alone", err=True)
    return base, []


@click.command("swap-adapter")
@click.option(
    "--adapter",
    "reference",
    required=True,
    metavar="NAME[:VERSION]",
    help="The registered adapter (and version; default: the newest).",
)
@click.option("--target", "env", required=True, help="The environment, e.g. production.")
@click.option(
    "--endpoint",
    help="Also load it now into this server (ours or vLLM with runtime LoRA updating), "
    "e.g. http://127.0.0.1:8000.",
)
@click.option("--served-name", help="The adapter's name on that server [default: NAME].")
@click.option(
    "--lora-path",
    help="The folder to load, as that server sees it (e.g. a copy in a vLLM pod's /adapters) "
    "[default: an lfm server resolves NAME:VERSION itself; another gets this machine's "
    "verified copy].",
)
@click.option(
    "--api-key-env",
    default="LFM_API_KEY",
    show_default=True,
    help="The variable holding the server's operate key.",
)
@click.option("--reason", default="", help="Why, for the history.")
@friendly_errors
@needs_extra("registry extra", "registry")
def swap_adapter_cmd(
    reference: str,
    env: str,
    endpoint: str | None,
    served_name: str | None,
    lora_path: str | None,
    api_key_env: str,
    reason: str,
) -> None:
    """Point ENV at an adapter version in the registry (the seed's swap-adapter): servers
    following NAME@ENV load it within seconds; with --endpoint, one server loads it now."""
    from lfm.registry import RegistryError, open_registry, parse_reference

    parsed = parse_reference(reference)
    store = open_registry()
    try:
        move = store.promote(reference, env, reason=reason or "swap-adapter")
        version = move.to_version if move else store.get(f"{parsed.name}@{env}", False).version
        path = store.resolve(f"{parsed.name}@{env}").path if endpoint else None
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(
        f"{parsed.name}@{env} -> {version}"
        + ("" if move else " (already)")
        + "; servers following it load it within their --follow-interval"
    )
    if endpoint and path is not None:
        key = os.environ.get(api_key_env)
        # An lfm server resolves (and verifies) the registry version itself, and knows it by
        # name; vLLM loads a folder: the registry's verified copy on this machine.
        source = lora_path or (f"{parsed.name}:{version}" if _is_lfm(endpoint, key) else str(path))
        message = _load_on(endpoint, served_name or parsed.name, source, key)
        click.echo(f"{endpoint}: {message}")


def _is_lfm(endpoint: str, key: str | None) -> bool:
    request = urllib.request.Request(endpoint.rstrip("/") + "/v1/models", headers=_auth(key))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the user's URL)
            models = json.loads(response.read()).get("data", [])
    except (OSError, ValueError, AttributeError):
        return False  # _load_on says what is wrong with the endpoint
    return any(isinstance(m, dict) and m.get("owned_by") == "lfm" for m in models)


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _load_on(endpoint: str, name: str, path: str, key: str | None) -> str:
    """vLLM's runtime API: POST /v1/load_lora_adapter, replacing what is loaded as ``name``."""
    body = json.dumps({"lora_name": name, "lora_path": path, "load_inplace": True}).encode()
    headers = {"Content-Type": "application/json", **_auth(key)}
    request = urllib.request.Request(
        endpoint.rstrip("/") + "/v1/load_lora_adapter", body, headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 (the user's URL)
            return response.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{endpoint} refused the swap: {_error_text(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach {endpoint}: {reason}") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    text = exc.read().decode("utf-8", "replace")
    try:
        return f"{exc.code} {json.loads(text)['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{exc.code} {text.strip()[:500]}"
