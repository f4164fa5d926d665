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
    server = SimpleNamespace(embeddings=models, metrics=Metrics(lambda: 0, lambda: 0))

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
