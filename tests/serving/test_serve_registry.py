"""A server that follows a registry environment, `lfm swap-adapter`, API keys with roles, and
swaps under load with no failed request."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm_server import Server, serving

openai = pytest.importorskip("openai")
pytest.importorskip("semver")

READ_KEY = "read-key-0123456789abcdef"
OPERATE_KEY = "operate-key-0123456789abcdef"


@pytest.fixture(scope="module")
def registry(models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """bot 1.0.0 (adapter one) and 1.1.0 (adapter two), 1.0.0 in production."""
    root = tmp_path_factory.mktemp("registry")
    env = {
        "LFM_REGISTRY": str(root / "store"),
        "LFM_REGISTRY_CONFIG": str(root / "none.yaml"),
        "LFM_USER": "tester",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        for version, folder in (("1.0.0", models.one), ("1.1.0", models.two)):
            _lfm("register", "--model", str(folder), "--name", "bot", "--version", version)
        _lfm("promote", "bot:1.0.0", "--env", "production")
    return env


def _lfm(*args: str) -> str:
    result = CliRunner().invoke(lfm, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _answer(client, model: str = "bot") -> tuple[str, str]:
    """(text, which adapter version answered) for a greedy completion."""
    done = client.completions.create(model=model, prompt="hello", max_tokens=8, temperature=0)
    return done.choices[0].text, done.system_fingerprint


def _wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server did not follow in time"
        time.sleep(0.2)


def test_a_server_follows_its_environment_and_swap_adapter_moves_it(
    models, registry, tmp_path: Path, monkeypatch
):
    for key, value in registry.items():
        monkeypatch.setenv(key, value)
    args = (str(models.base), "--adapter", "bot=bot@production", "--follow-interval", "0.3")
    with serving(*args, cwd=tmp_path, env=registry) as server:
        client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
        first, fingerprint = _answer(client)
        assert fingerprint == "bot@1.0.0"
        moved = _lfm("swap-adapter", "--adapter", "bot:1.1.0", "--target", "production")
        assert "bot@production -> 1.1.0" in moved
        _wait_for(lambda: _answer(client)[1] == "bot@1.1.0")
        second = _answer(client)[0]
        assert second != first  # the answers really changed
        _lfm("rollback", "bot", "--env", "production")
        _wait_for(lambda: _answer(client) == (first, "bot@1.0.0"))
        listed = {m.id: m for m in client.models.list().data}
        assert listed["bot"].lfm["version"] == "1.0.0"
        assert listed["bot"].lfm["source"] == "bot@production"

        # --endpoint: drives a server over vLLM's runtime API (here a name nothing follows).
        pinned = _lfm("swap-adapter", "--adapter", "bot:1.1.0", "--target", "staging",
                      "--endpoint", server.url, "--served-name", "pinned")  # fmt: skip
        assert "added successfully" in pinned or "replaced successfully" in pinned
        assert _answer(client, "pinned") == (second, "pinned@1.1.0")

    from lfm.registry import open_registry

    store = open_registry()
    try:
        actions = [entry.action for entry in store.audit("bot")]
    finally:
        store.close()
    assert actions.count("serve-replace") >= 2 and "serve-load" in actions


@pytest.mark.parametrize(
    ("clients", "swaps", "interval"),
    [(6, 6, 0.7), pytest.param(8, 10, 6.0, marks=pytest.mark.slow)],  # slow: 8 clients, 60 s
)
def test_swaps_under_load_fail_no_request(
    models, registry, tmp_path: Path, monkeypatch, clients: int, swaps: int, interval: float
):
    """Clients ask all along while the adapter changes version, first by the registry
    (promote), then by the load API: no request fails, and each answer is the one of the
    version its fingerprint names (the version live when it started)."""
    for key, value in registry.items():
        monkeypatch.setenv(key, value)
    _lfm("promote", "bot:1.0.0", "--env", "production")
    args = (str(models.base), "--adapter", "bot=bot@production", "--follow-interval", "0.3")
    with serving(*args, cwd=tmp_path, env=registry) as server:
        client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
        expected = {}
        for version in ("1.0.0", "1.1.0"):
            _load(server, "probe", f"bot:{version}", replace=bool(expected))
            expected[f"bot@{version}"] = _answer(client, "probe")[0]
        stop = threading.Event()
        answers: list[tuple[str, str]] = []
        failures: list[BaseException] = []

        def ask() -> None:
            while not stop.is_set():
                try:
                    answers.append(_answer(client))
                except BaseException as exc:  # every failure counts
                    failures.append(exc)

        with ThreadPoolExecutor(clients) as pool:
            for _ in range(clients):
                pool.submit(ask)
            for i in range(swaps):
                time.sleep(interval)
                version = ("1.1.0", "1.0.0")[i % 2]
                if i < swaps // 2:  # (a load by hand ends the following: the API goes last)
                    _lfm("promote", f"bot:{version}", "--env", "production")
                else:
                    _load(server, "bot", f"bot:{version}", replace=True)
            time.sleep(1.5)
            stop.set()
        assert failures == []
        assert len(answers) > 6, answers  # (a busy machine answers fewer)
        assert {fingerprint for _, fingerprint in answers} == set(expected), answers
        wrong = [(text, fp) for text, fp in answers if text != expected[fp]]
        assert wrong == [], expected


def _load(server: Server, name: str, path: str, *, replace: bool, key: str | None = None) -> str:
    body = {"lora_name": name, "lora_path": path, "load_inplace": replace}
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        server.url + "/v1/load_lora_adapter", json.dumps(body).encode(), headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def test_keys_and_roles(models, tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# role key\nread {READ_KEY}\noperate {OPERATE_KEY}\n")
    args = (str(models.base), "--api-keys", str(keys), "--host", "0.0.0.0")
    with serving(*args, cwd=tmp_path) as server:
        anonymous = openai.OpenAI(base_url=server.v1, api_key="wrong-key", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="valid API key"):
            anonymous.models.list()
        reader = openai.OpenAI(base_url=server.v1, api_key=READ_KEY, max_retries=0)
        assert reader.completions.create(model="tiny", prompt="hi", max_tokens=2).choices
        with pytest.raises(urllib.error.HTTPError) as refused:
            _load(server, "one", str(models.one), replace=False, key=READ_KEY)
        assert refused.value.code == 403
        assert json.loads(refused.value.read())["error"]["type"] == "permission_error"
        assert "added" in _load(server, "one", str(models.one), replace=False, key=OPERATE_KEY)
        assert reader.completions.create(model="one", prompt="hi", max_tokens=2).choices
        for path in ("/health", "/ready"):  # probes need no key
            with urllib.request.urlopen(server.url + path) as response:
                assert response.status == 200
    log = server.log.read_text()
    assert READ_KEY not in log and OPERATE_KEY not in log


@pytest.mark.parametrize(
    ("content", "words"),
    [("reader abcdefghijklmnopqrstuvwxyz\n", "ROLE KEY"), ("read short\n", "16 characters")],
)
def test_bad_key_files_are_one_line_errors_that_never_show_the_key(
    models, tmp_path, content, words
):
    keys = tmp_path / "keys.txt"
    keys.write_text(content)
    result = CliRunner().invoke(lfm, ["serve", str(models.base), "--api-keys", str(keys)])
    assert result.exit_code == 1 and words in result.output
    assert content.split()[1] not in result.output
