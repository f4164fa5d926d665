"""`lfm serve --embedding NAME=REF` with no MODEL: a real server of embedding models alone.

No generative model loads. /v1/models lists the embedding models, /v1/embeddings answers behind
the API keys and body limit, /metrics counts its requests, and the generation routes answer an
OpenAI-shaped error saying this server serves embedding models only. A model given as a registry
reference (name:version) is served as well as one given as a folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/lfm_server.py

from lfm_server import serving  # noqa: E402
from test_embedding_serve_cli import _call, _too_big  # noqa: E402

READ_KEY = "embedding-only-read-key-0123456789"
OPERATE_KEY = "embedding-only-operate-key-0123456789"


def _lfm(*args: str, env: dict[str, str | None] | None = None):
    from lfm.cli import lfm

    return CliRunner().invoke(lfm, list(args), env=env)


@pytest.fixture(scope="module")
def registry(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A registry holding the tiny encoder as retriever:1.0.0 (type embedding)."""
    pytest.importorskip("semver")
    root = tmp_path_factory.mktemp("registry")
    env = {
        "LFM_REGISTRY": str(root / "store"),
        "LFM_REGISTRY_CONFIG": str(root / "none.yaml"),
        "LFM_USER": "tester",
    }
    registered = _lfm(
        "register", "--model", str(tiny_encoder), "--name", "retriever", "--version", "1.0.0",
        env=env,
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    return env


def test_nothing_to_serve_names_every_way_to_give_a_model():
    result = _lfm("serve")
    assert result.exit_code == 2
    assert "--embedding NAME=REF (embedding models alone)" in result.output
    assert "Traceback" not in result.output


def test_served_name_without_a_base_model_is_refused(tiny_encoder):
    result = _lfm("serve", "--embedding", f"retriever={tiny_encoder}", "--served-name", "x")
    assert result.exit_code == 2
    assert "--served-name names the base model, and there is none" in result.output


def test_without_keys_it_listens_on_this_machine_only(tiny_encoder):
    no_keys = {"LFM_SERVE_API_KEYS": None}  # whatever the environment running the tests holds
    result = _lfm(
        "serve", "--embedding", f"retriever={tiny_encoder}", "--host", "0.0.0.0", env=no_keys
    )
    assert result.exit_code == 1
    assert "--host 0.0.0.0 listens beyond this machine: give API keys" in result.output


def test_model_is_served_as_an_embedding_model_when_it_is_one(tiny_encoder, registry, tmp_path):
    """MODEL a sentence-transformers folder, a registered one, or a task: embedding config:
    served alone on /v1/embeddings; a generative model or config is not."""
    from lfm.cli.serve import _embedding_model

    assert _embedding_model(str(tiny_encoder), None) == (tiny_encoder.name, str(tiny_encoder))
    assert _embedding_model(str(tiny_encoder), "mine") == ("mine", str(tiny_encoder))
    generative = tmp_path / "generative"
    generative.mkdir()
    (generative / "config.json").write_text("{}")
    assert _embedding_model(str(generative), None) is None
    assert _embedding_model("some-org/some-model", None) is None  # a hub id
    with pytest.MonkeyPatch.context() as env:
        for key, value in registry.items():
            env.setenv(key, value)
        assert _embedding_model("retriever:1.0.0", None) == ("retriever", "retriever:1.0.0")
        assert _embedding_model("retriever:9.9.9", None) is None  # not registered: not ours
    # MODEL's own name is not another --embedding's to take.
    twice = _lfm("serve", str(tiny_encoder), "--embedding", f"{tiny_encoder.name}={tiny_encoder}")
    assert twice.exit_code == 2 and "is MODEL's name already" in twice.output

    config = tmp_path / "retriever.yaml"
    config.write_text(
        "model_config:\n  name: retriever\n  version: 1.0.0\n  task: embedding\n"
        f"  base_model: {tiny_encoder}\n  dataset:\n    source:\n      type: documents\n"
        "      path: docs\n"
    )
    result = _lfm("serve", str(config))
    assert result.exit_code == 1, result.output
    # It looked where `lfm compile CONFIG` writes by default, and says so: a bundle compiled
    # with -o elsewhere is served by its folder.
    text = " ".join(result.output.split())
    assert "build/retriever/output holds no trained embedding model yet." in text
    assert f"`lfm serve {config}` looks in the bundle that `lfm compile {config}` writes by " in (
        text
    )
    assert "default (build/retriever/)" in text
    assert "serve its trained output: lfm serve BUNDLE/output" in text
    assert "Traceback" not in result.output


def test_serving_a_generation_config_before_training_names_where_it_looked(tmp_path, monkeypatch):
    from lfm.cli.serve import _from_config

    config = tmp_path / "support.yaml"
    config.write_text(
        "model_config:\n  name: support\n  version: 1.0.0\n  base_model: org/tiny-model\n"
        "  dataset:\n    source:\n      type: local\n      path: data.jsonl\n"
    )
    monkeypatch.chdir(tmp_path)
    messages: list[str] = []
    monkeypatch.setattr("click.echo", lambda text, err=False: messages.append(text))
    assert _from_config(str(config)) == ("org/tiny-model", [])
    said = " ".join(messages)
    assert "build/support/output holds no trained adapter yet." in said
    assert "lfm serve BUNDLE/output" in said and "serving the base model alone" in said


def test_a_bad_embedding_reference_is_one_message(tmp_path):
    result = _lfm("serve", "--embedding", f"retriever={tmp_path / 'missing'}")
    assert result.exit_code == 1
    assert "--embedding retriever=" in result.output and "Traceback" not in result.output


@pytest.mark.slow  # a real server: the tiny encoder loads twice (about 15 s)
def test_a_server_of_embedding_models_alone(tiny_encoder, registry, tmp_path):
    env = {**registry, "LFM_SERVE_API_KEYS": f"read:{READ_KEY},operate:{OPERATE_KEY}"}
    # MODEL itself an embedding model (named by --served-name), and one more by --embedding.
    args = (
        str(tiny_encoder),
        "--served-name",
        "retriever",
        "--embedding",
        "pinned=retriever:1.0.0",
    )
    with serving(*args, cwd=tmp_path, env=env) as server:
        status, listed = _call(f"{server.v1}/models", key=READ_KEY)
        assert status == 200, listed
        assert [m["id"] for m in listed["data"]] == ["pinned", "retriever"]  # no base model
        assert {m["lfm"]["kind"] for m in listed["data"]} == {"embedding"}
        assert listed["data"][0]["lfm"]["source"] == "retriever:1.0.0"

        url = f"{server.v1}/embeddings"
        texts = ["lists hold items", "keys"]
        status, folder = _call(url, {"model": "retriever", "input": texts}, READ_KEY)
        assert status == 200, folder
        assert [d["index"] for d in folder["data"]] == [0, 1]
        assert len(folder["data"][0]["embedding"]) == 32
        # The registry's verified copy is the same model: the same vectors.
        status, pinned = _call(url, {"model": "pinned", "input": texts}, READ_KEY)
        assert status == 200, pinned
        for ours, theirs in zip(folder["data"], pinned["data"], strict=True):
            assert ours["embedding"] == pytest.approx(theirs["embedding"], abs=1e-6)

        status, refused = _call(url, {"model": "retriever", "input": "x"})  # no key
        assert status == 401, refused
        assert _too_big(server.url, READ_KEY) == 413
        status, unknown = _call(url, {"model": "nope", "input": "x"}, READ_KEY)
        assert status == 404 and "not served here" in unknown

        body = {"model": "retriever", "messages": [{"role": "user", "content": "hi"}]}
        status, text = _call(f"{server.v1}/chat/completions", body, READ_KEY)
        assert status == 404, text
        error = json.loads(text)["error"]  # OpenAI's shape: the openai client raises NotFound
        assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
        assert "serves embedding models only (pinned, retriever)" in error["message"]
        status, text = _call(f"{server.v1}/completions", {"model": "x", "prompt": "hi"}, READ_KEY)
        assert status == 404 and "serves embedding models only" in text
        load = {"lora_name": "a", "lora_path": "b"}
        status, text = _call(f"{server.v1}/load_lora_adapter", load, READ_KEY)
        assert status == 403, text  # the role is checked first, as on a generation server
        status, text = _call(f"{server.v1}/load_lora_adapter", load, OPERATE_KEY)
        assert status == 400 and "no base model to load LoRA adapters onto" in text

        metrics = _metrics(server.url, READ_KEY)
        assert 'lfm_requests_total{endpoint="embeddings",model="retriever",status="200"} 1.0' in (
            metrics
        )
        assert 'lfm_requests_total{endpoint="embeddings",model="unknown",status="404"} 1.0' in (
            metrics
        )


def _metrics(url: str, key: str) -> str:
    import urllib.request

    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()
