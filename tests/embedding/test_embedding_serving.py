"""POST /v1/embeddings answers in OpenAI's shape for a served embedding model."""

from __future__ import annotations

import base64
import struct
from types import SimpleNamespace

import pytest
from lfm.serving.embeddings import EmbeddingModels, embeddings_endpoint, parse
from lfm.serving.metrics import Metrics
from lfm.serving.protocol import APIError


@pytest.fixture(scope="module")
def client(tiny_encoder):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    models = EmbeddingModels()
    models.load("retriever", str(tiny_encoder))
    server = SimpleNamespace(
        embeddings=models,
        metrics=Metrics(lambda: 0, lambda: 0),
        generates=lambda name: name == "support",  # an adapter on the same server
    )

    async def endpoint(request):  # as app.py's route wrapper: an APIError is a JSON answer
        try:
            return await embeddings_endpoint(server, request, None)
        except APIError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    return TestClient(Starlette(routes=[Route("/v1/embeddings", endpoint, methods=["POST"])]))


def test_a_list_of_inputs_gets_one_vector_each_in_openais_shape(client):
    answer = client.post(
        "/v1/embeddings", json={"model": "retriever", "input": ["lists hold items", "keys"]}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "list" and body["model"] == "retriever"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 32 for d in body["data"])
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_base64_vectors_decode_to_the_float_ones(client):
    floats = client.post("/v1/embeddings", json={"model": "retriever", "input": "lists"}).json()
    packed = client.post(
        "/v1/embeddings", json={"model": "retriever", "input": "lists", "encoding_format": "base64"}
    ).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)


def test_bad_requests_are_openai_errors():
    with pytest.raises(APIError, match="not served here"):
        parse({"model": "other", "input": "x"}, ["retriever"])
    with pytest.raises(APIError, match="non-empty string"):
        parse({"model": "retriever", "input": []}, ["retriever"])
    with pytest.raises(APIError, match="encoding_format"):
        parse({"model": "retriever", "input": "x", "encoding_format": "int8"}, ["retriever"])


def test_a_generation_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not a sentence-transformers model"):
        EmbeddingModels().load("x", str(tmp_path))


def test_embedding_counts_tokens_from_one_tokenization_without_deprecated_calls(
    tiny_encoder, monkeypatch
):
    """encode() tokenizes each input once; the deprecated model.tokenize() is never called."""
    models = EmbeddingModels()
    models.load("retriever", str(tiny_encoder))
    model = models._models["retriever"].model
    texts = ["lists hold items", "keys", "a while loop repeats"]
    expected = int(model.preprocess(texts)["attention_mask"].sum())
    seen: list[str] = []
    preprocess = model.preprocess

    def counted(inputs, *args, **kwargs):
        seen.extend(inputs)
        return preprocess(inputs, *args, **kwargs)

    def deprecated(*args, **kwargs):
        raise AssertionError("model.tokenize is deprecated in sentence-transformers 6")

    monkeypatch.setattr(model, "preprocess", counted)
    monkeypatch.setattr(model, "tokenize", deprecated)
    vectors, tokens = models.embed("retriever", texts)
    assert sorted(seen) == sorted(texts)  # each input tokenized once
    assert tokens == expected and len(vectors) == 3
    reference = model.encode(texts, show_progress_bar=False)
    assert [v for v in vectors] == [pytest.approx(list(map(float, r)), abs=1e-6) for r in reference]


def test_embedding_models_are_listed_as_such():
    models = EmbeddingModels()
    assert models.listed() == []


def test_dimensions_is_accepted_only_as_the_models_own(client):
    """OpenAI truncates vectors for models trained for it (Matryoshka); lfm's are not, so a
    different dimensions is a 400 naming the model's, never a silent full-length answer."""
    asked = {"model": "retriever", "input": "lists", "dimensions": 32}
    assert client.post("/v1/embeddings", json=asked).status_code == 200
    for wrong in (16, 128):
        answer = client.post("/v1/embeddings", json={**asked, "dimensions": wrong})
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["param"] == "dimensions" and error["type"] == "invalid_request_error"
        assert "retriever's vectors have 32 dimensions" in error["message"]
    answer = client.post("/v1/embeddings", json={**asked, "dimensions": "32"})
    assert answer.status_code == 400 and "positive integer" in answer.json()["error"]["message"]


def test_an_input_over_the_models_limit_is_refused_unless_truncation_is_asked(client):
    """Over max_seq_length (128 here): a 400 as OpenAI, vLLM and TEI answer, unless vLLM's
    truncate_prompt_tokens asks to embed the start; usage counts the tokens embedded."""
    long = " ".join(["lists"] * 300)
    answer = client.post("/v1/embeddings", json={"model": "retriever", "input": ["keys", long]})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "input"
    assert "input[1] is 302 tokens, more than retriever's limit of 128" in error["message"]
    assert '"truncate_prompt_tokens": -1' in error["message"]

    cut = {"model": "retriever", "input": long, "truncate_prompt_tokens": -1}
    answer = client.post("/v1/embeddings", json=cut)
    assert answer.status_code == 200
    assert answer.json()["usage"]["prompt_tokens"] == 128  # what was embedded, not 302
    shorter = client.post("/v1/embeddings", json={**cut, "truncate_prompt_tokens": 10})
    assert shorter.status_code == 200 and shorter.json()["usage"]["prompt_tokens"] == 10
    # The limit is back for the next request: the truncation was that request's alone.
    again = client.post("/v1/embeddings", json={"model": "retriever", "input": long})
    assert again.status_code == 400
    for bad in (0, -2, 129, True):
        refused = client.post("/v1/embeddings", json={**cut, "truncate_prompt_tokens": bad})
        assert refused.status_code == 400, bad


def test_an_adapter_named_on_v1_embeddings_is_a_generative_model(client):
    answer = client.post("/v1/embeddings", json={"model": "support", "input": "x"})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["message"].startswith("'support' is a generative model: POST /v1/chat/completions")
    unknown = client.post("/v1/embeddings", json={"model": "other", "input": "x"}).json()["error"]
    assert unknown["code"] == "model_not_found" and "not served here" in unknown["message"]


def test_the_startup_line_names_the_embedding_models_beside_the_generative_one():
    from lfm.cli.serve import _serving_line

    server = SimpleNamespace(
        base_name="tiny-model",
        adapters=SimpleNamespace(live=lambda: [SimpleNamespace(name="support")]),
        embeddings=SimpleNamespace(names=lambda: ["retriever"]),
    )
    assert _serving_line(server, "http://127.0.0.1:8000/v1") == (
        "serving tiny-model (adapters: support) at http://127.0.0.1:8000/v1, and embedding "
        "models retriever at http://127.0.0.1:8000/v1/embeddings"
    )
    server.embeddings = SimpleNamespace(names=lambda: [])
    assert (
        _serving_line(server, "http://h/v1")
        == "serving tiny-model (adapters: support) at http://h/v1"
    )
