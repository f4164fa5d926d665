"""A hub id on a machine that cannot reach the hub: an answer in a second or two, not a minute
of retries; a cached model is used offline."""

from __future__ import annotations

import socket
import time

import huggingface_hub.constants
import pytest
from lfm.runtime import hub, modeling
from lfm.runtime.errors import RuntimeConfigError


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch):
    """Neither offline mode nor a proxy, and no remembered probe."""
    import datasets.config

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # go_offline sets them: restored after
        monkeypatch.setattr(datasets.config, name, getattr(datasets.config, name))
        monkeypatch.delenv(name, raising=False)
    for name in hub.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    hub.reachable.cache_clear()
    yield
    hub.reachable.cache_clear()


def test_the_probe_opens_a_real_connection(online, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.reachable()
    hub.reachable.cache_clear()  # the port is closed now
    assert not hub.reachable()


@pytest.fixture
def unreachable(online, monkeypatch: pytest.MonkeyPatch):
    """The hub's endpoint is a local port nothing listens on."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")


def test_an_unreachable_hub_and_no_cache_is_one_line_at_once(unreachable):
    started = time.monotonic()
    with pytest.raises(
        RuntimeConfigError, match=r"'someorg/none' is a hub id, .* cannot be reached"
    ):
        modeling.load_tokenizer("someorg/none")
    assert time.monotonic() - started < 5


def test_an_unreachable_hub_with_the_model_cached_goes_offline(unreachable, monkeypatch):
    monkeypatch.setattr(hub, "cached", lambda repo_id: repo_id == "someorg/cached")
    hub.prepare("base_model", "someorg/cached")
    assert huggingface_hub.constants.HF_HUB_OFFLINE  # the hub client reads only its cache now


def test_a_hub_benchmark_with_no_hub_is_an_answer_in_seconds(unreachable):
    """lm-eval's own tasks read their data from the hub: without it, from the cache at once."""
    pytest.importorskip("lm_eval")
    from lfm.runtime.evaluation.benchmarks import task_specs

    started = time.monotonic()
    with pytest.raises(RuntimeConfigError, match="hellaswag"):
        task_specs(["hellaswag"])
    assert huggingface_hub.constants.HF_HUB_OFFLINE
    assert time.monotonic() - started < 45  # lm-eval's task index alone takes seconds
