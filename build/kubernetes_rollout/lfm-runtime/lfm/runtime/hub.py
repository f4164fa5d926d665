"""Whether the Hugging Face Hub can be reached, asked once (at most PROBE_SECONDS) before a hub
id is loaded.

Without this, a hub id on a machine with no network costs about a minute of retries
(huggingface_hub retries each request with backoff) and then fails all the same. With it, a
model already in the local cache is used offline at once, and one that is not is a one-line
error naming HF_HUB_OFFLINE and local paths.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from urllib.parse import urlparse

from .errors import RuntimeConfigError
from .launch import announce

DEFAULT_ENDPOINT = "https://huggingface.co"
# Behind a proxy the hub client knows the way and a direct probe would fail: do not guess.
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_SECONDS = 2.0


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: the hub client reads only its cache."""
    import huggingface_hub.constants

    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


@functools.cache
def reachable() -> bool:
    """A TCP connection to the hub's endpoint opens within PROBE_SECONDS (or a proxy is set)."""
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    url = urlparse(endpoint())
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def cached(repo_id: str) -> bool:
    """The model's config.json is in the local hub cache (so are the files it was loaded with)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id: the loader will say so
        return False
    return isinstance(found, str)


def prepare(field: str, repo_id: str) -> None:
    """Before ``repo_id`` (a hub id named by the config's ``field``) is loaded: nothing to do
    when the hub answers; offline mode when it does not but the model is cached; else a
    RuntimeConfigError at once."""
    if offline() or reachable():
        return
    if cached(repo_id):
        go_offline()
        announce(f"{endpoint()} cannot be reached: loading {repo_id} from the local cache")
        return
    raise RuntimeConfigError(
        f"{field}: {repo_id!r} is a hub id, {endpoint()} cannot be reached from here, and it is "
        "not in the local cache; connect this machine, or download it where there is a network "
        "and set HF_HUB_OFFLINE=1 here, or point "
        f"{field} at a local directory (./path)"
    )


def go_offline() -> None:
    """Offline mode for the rest of this process (the hub client reads it at each request)."""
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:  # datasets (lm-eval's tasks) read the setting when imported
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
