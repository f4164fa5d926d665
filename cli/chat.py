"""`lfm chat`: talk to a model in the terminal, or ask it once (`--prompt`) from a script."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from .common import friendly_errors, needs_extra

HELP = """commands:
  /adapter NAME   talk to another adapter (or the base model); /adapter alone lists them
  /reset          forget the conversation
  /exit           leave (Ctrl-D too); Ctrl-C stops an answer"""


@click.command("chat")
@click.argument("model", required=False)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME=REF",
    help="Load an adapter as NAME (a folder, name:version or name@ENV). Repeatable.",
)
@click.option(
    "--endpoint",
    help="Talk to a running OpenAI-compatible server instead, e.g. "
    "http://127.0.0.1:8000 (`lfm serve`, vLLM, ...).",
)
@click.option(
    "--api-key-env",
    default="LFM_API_KEY",
    show_default=True,
    help="The variable holding the endpoint's key.",
)
@click.option(
    "--use",
    "current",
    help="Start with this model or adapter [default: the first adapter, else the base model].",
)
@click.option("--prompt", help="Ask once, print the answer, exit ('-' reads it from stdin).")
@click.option("--system", help="A system message at the start of the conversation.")
@click.option("--max-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@friendly_errors
@needs_extra("serving extras", "train,serve")
def chat_cmd(model: str | None, adapters: tuple[str, ...], endpoint: str | None, api_key_env: str, current: str | None, prompt: str | None, system: str | None, max_tokens: int, temperature: float, top_p: float) -> None:  # fmt: skip
    """Chat with MODEL (a model folder, a training output, a registry reference, or a bundle's
    config) and its adapters, streaming; or with a server at --endpoint."""
    from lfm.serving.chat import ChatError
    from lfm.serving.engine import Sampling

    backend = _backend(model, adapters, endpoint, api_key_env)
    try:
        names = backend.models()
    except ChatError as exc:
        raise click.ClickException(str(exc)) from None
    current = current or (names[1] if len(names) > 1 else names[0])
    if current not in names:
        raise click.ClickException(f"--use {current}: not one of {', '.join(names)}")
    sampling = Sampling(max_tokens, temperature, top_p)
    history = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        text = sys.stdin.read() if prompt == "-" else prompt
        try:
            for piece in backend.stream(current, [*history, {"role": "user", "content": text}], sampling):  # fmt: skip
                click.echo(piece, nl=False)
        except ChatError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo()
        return
    _converse(backend, names, current, history, sampling)


def _backend(model: str | None, adapters: tuple[str, ...], endpoint: str | None, key_env: str) -> Any:  # fmt: skip
    from lfm.runtime.errors import RuntimeConfigError
    from lfm.serving.adapters import AdapterError
    from lfm.serving.auth import Keys
    from lfm.serving.chat import LocalBackend, RemoteBackend
    from lfm.serving.server import AdapterSpec, ModelServer, base_of

    from .serve import _adapter_spec, _what_to_serve

    if endpoint:
        if model or adapters:
            raise click.UsageError("--endpoint talks to what that server serves: no MODEL or --adapter")  # fmt: skip
        return RemoteBackend(endpoint, os.environ.get(key_env))
    specs = [_adapter_spec(text) for text in adapters]
    if model is None and not specs:
        raise click.UsageError("give a MODEL, --adapter NAME=REF, or --endpoint URL")
    try:
        base, own = _what_to_serve(model, specs, base_of)
        server = ModelServer(base, [AdapterSpec(n, r) for n, r in own + specs], keys=Keys([]))
    except (AdapterError, RuntimeConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    return LocalBackend(server)


def _converse(backend: Any, names: list[str], current: str, history: list[dict[str, str]], sampling: Any) -> None:  # fmt: skip
    from lfm.serving.chat import ChatError

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 (line editing and history for input())
    system = history[:1]
    click.echo(f"talking to {current}; /help for commands")
    while True:
        try:
            line = input(f"{current}> you: ").strip()
        except EOFError:
            click.echo()
            return
        except KeyboardInterrupt:
            click.echo()
            continue
        if not line:
            continue
        if line.startswith("/"):
            command, _, argument = line.partition(" ")
            if command in ("/exit", "/quit"):
                return
            if command == "/reset":
                history[:] = list(system)
                click.echo("(conversation forgotten)")
            elif command == "/adapter" and argument.strip() in names:
                current = argument.strip()
                click.echo(f"(now talking to {current})")
            elif command == "/adapter":
                marked = [f"{n} *" if n == current else n for n in names]
                click.echo(("" if not argument else f"no {argument.strip()!r}; ") + "models: " + ", ".join(marked))  # fmt: skip
            else:
                click.echo(HELP)
            continue
        history.append({"role": "user", "content": line})
        pieces: list[str] = []
        try:
            for piece in backend.stream(current, history, sampling):
                pieces.append(piece)
                click.echo(piece, nl=False)
        except KeyboardInterrupt:
            click.echo(" (stopped)", nl=False)
        except ChatError as exc:
            click.echo(f"error: {exc}", err=True)
            history.pop()
            continue
        click.echo()
        history.append({"role": "assistant", "content": "".join(pieces)})
