"""`lfm serve --embedding NAME=REF`: its values are checked before the base model loads, and a
real server answers /v1/embeddings behind its API keys, lists the model in /v1/models, and
refuses an oversized body."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/lfm_server.py

from lfm_server import serving  # noqa: E402

KEY = "embedding-test-read-key-0123456789"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lfm.runtime.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("base") / "tiny", chat_template=True, pretrain_steps=0
    )


def _serve(monkeypatch, *args: str):
    """`lfm serve ARGS` in-process, with a ModelServer that fails the test if it is built."""
    from click.testing import CliRunner
    from lfm.cli import lfm
    from lfm.serving import server

    def built(*_args, **_kwargs):
        raise AssertionError("the base model loaded before --embedding was checked")

    monkeypatch.setattr(server.ModelServer, "__init__", built)
    return CliRunner().invoke(lfm, ["serve", *args])


@pytest.mark.parametrize(
    ("embedding", "words"),
    [
        ("retriever", "--embedding retriever: write NAME=REF"),
        ("bad name=ENCODER", "'bad name' is not a valid model name"),
        ("one=ENCODER", "'one' is already an adapter's name"),
        ("base=ENCODER", "'base' is already the base model's name"),
        ("retriever=ENCODER --embedding retriever=ENCODER", "the name 'retriever' is given twice"),
        ("retriever=NOT_ST", "is not a sentence-transformers model (no modules.json)"),
        ("retriever=./no/such/folder", "--embedding retriever=./no/such/folder: no such directory"),
    ],
)
def test_embedding_values_are_checked_before_the_base_model_loads(
    monkeypatch, tmp_path, tiny_encoder, embedding, words
):
    (tmp_path / "base").mkdir()
    (tmp_path / "not-st").mkdir()
    (tmp_path / "not-st" / "config.json").write_text('{"model_type": "bert"}')
    monkeypatch.chdir(tmp_path)
    values = embedding.replace("ENCODER", str(tiny_encoder)).replace("NOT_ST", "./not-st")
    args = ["./base", "--adapter", "one=./adapter"]
    for value in values.split(" --embedding "):
        args += ["--embedding", value]
    result = _serve(monkeypatch, *args)
    assert result.exit_code != 0
    assert words in result.output and "--adapter" not in result.output.split("--embedding")[0]
    assert "Traceback" not in result.output and "base model loaded" not in str(result.exception)


def _call(url: str, body: object | None = None, key: str | None = None, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data, headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _too_big(url: str, key: str) -> int:
    """A request announcing a 5 MiB body: refused from its Content-Length, before the body."""
    import http.client
    from urllib.parse import urlsplit

    place = urlsplit(url)
    connection = http.client.HTTPConnection(place.hostname, place.port, timeout=60)
    try:
        connection.putrequest("POST", "/v1/embeddings")
        for name, value in (
            ("Content-Type", "application/json"),
            ("Authorization", f"Bearer {key}"),
            ("Content-Length", str(5 << 20)),
        ):
            connection.putheader(name, value)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.slow  # a real server: the tiny base model and the encoder load (about 20 s)
def test_a_real_server_answers_v1_embeddings_behind_its_keys(base, tiny_encoder, tmp_path):
    env = {"LFM_SERVE_API_KEYS": f"read:{KEY}"}
    args = (str(base), "--embedding", f"retriever={tiny_encoder}")
    with serving(*args, cwd=tmp_path, env=env) as server:
        url = f"{server.v1}/embeddings"
        body = {"model": "retriever", "input": ["lists hold items", "keys"]}
        status, answer = _call(url, body, KEY)
        assert status == 200, answer
        assert [d["index"] for d in answer["data"]] == [0, 1]
        assert len(answer["data"][0]["embedding"]) == 32 and answer["usage"]["total_tokens"] > 0

        status, refused = _call(url, body)  # no key
        assert status == 401, refused
        status, refused = _call(url, body, "not-the-key")
        assert status == 401, refused

        assert _too_big(server.url, KEY) == 413

        status, listed = _call(f"{server.v1}/models", key=KEY)
        assert status == 200
        [entry] = [m for m in listed["data"] if m["id"] == "retriever"]
        assert entry["owned_by"] == "lfm" and entry["lfm"]["kind"] == "embedding"
        assert entry["lfm"]["dimensions"] == 32
        assert [m["id"] for m in listed["data"]][0] == base.name  # the base model first

        # A mixed server: each model's wrong route says which route serves it.
        for route in ("completions", "chat/completions"):
            prompt = {"prompt": "hi"} if route == "completions" else {"messages": [
                {"role": "user", "content": "hi"}]}  # fmt: skip
            status, text = _call(f"{server.v1}/{route}", {"model": "retriever", **prompt}, KEY)
            assert status == 404, text
            error = json.loads(text)["error"]
            assert error["message"] == "'retriever' is an embedding model: POST /v1/embeddings"
            assert error["code"] == "model_not_found"
        status, text = _call(url, {"model": base.name, "input": "x"}, KEY)
        error = json.loads(text)["error"]
        assert status == 404 and error["code"] == "model_not_found", text
        assert f"'{base.name}' is a generative model: POST /v1/chat/completions" in error["message"]
    started = server.log.read_text()
    assert f"serving {base.name} (adapters: none) at {server.v1}, and embedding models " in started
    assert f"retriever at {server.v1}/embeddings" in started
