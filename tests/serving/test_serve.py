"""`lfm serve` tried with the real `openai` client on a real server: answers (whole and
streamed) that are exactly transformers' own, batched across adapters; hot swaps through vLLM's
runtime API; every bad input a 4xx in OpenAI's error shape, with the server serving on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lfm_server import Server, serving

openai = pytest.importorskip("openai")

PROMPTS = ("hello world", "the quick brown fox jumps over the lazy dog", "a")


@pytest.fixture(scope="module")
def server(models, tmp_path_factory: pytest.TempPathFactory):
    cwd = tmp_path_factory.mktemp("server")
    args = (str(models.base), "--adapter", f"one={models.one}", "--adapter", f"two={models.two}")
    with serving(*args, cwd=cwd) as running:
        yield running


@pytest.fixture
def client(server: Server):
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def post(server: Server, path: str, body: object, raw: bytes | None = None) -> tuple[int, object]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path, data, {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def reference_answers(models) -> dict[tuple[str, str], str]:
    """What transformers' generate (greedy) answers, per model and prompt."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models.base)
    answers = {}
    for name, adapter in (("tiny", None), ("one", models.one), ("two", models.two)):
        model = AutoModelForCausalLM.from_pretrained(models.base)
        if adapter:
            model = PeftModel.from_pretrained(model, adapter)
        for prompt in PROMPTS:
            ids = tokenizer(prompt, return_tensors="pt")
            out = model.eval().generate(**ids, max_new_tokens=10, do_sample=False)
            answers[name, prompt] = tokenizer.decode(
                out[0, ids.input_ids.shape[1] :], skip_special_tokens=True
            )
    return answers


def test_models_lists_the_base_and_each_adapter_with_its_lineage(client, models):
    listed = {m.id: m for m in client.models.list().data}
    assert set(listed) == {"tiny", "one", "two"}
    assert listed["one"].parent == "tiny" and listed["one"].root == str(models.one)
    assert listed["one"].lfm == {"source": str(models.one), "version": None, "rank": 4}


def test_mixed_adapter_batches_answer_exactly_as_transformers_does(client, models):
    """Nine requests at once, three models: the same text as one-at-a-time generate()."""
    cases = [(model, prompt) for model in ("tiny", "one", "two") for prompt in PROMPTS]

    def ask(case: tuple[str, str]) -> str:
        model, prompt = case
        answer = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0)
        return answer.choices[0].text

    with ThreadPoolExecutor(len(cases)) as pool:
        together = list(pool.map(ask, cases))
    expected = reference_answers(models)
    assert together == [expected[case] for case in cases]
    assert len({together[i] for i in (0, 3, 6)}) == 3  # the adapters really differ


def test_chat_whole_and_streamed_agree(client):
    messages = [{"role": "user", "content": "Say something."}]
    whole = client.chat.completions.create(
        model="one", messages=messages, max_tokens=12, temperature=0
    )
    assert whole.choices[0].message.role == "assistant"
    assert whole.usage.completion_tokens == 12 and whole.choices[0].finish_reason == "length"
    assert whole.system_fingerprint.startswith("one@")
    chunks = list(
        client.chat.completions.create(
            model="one", messages=messages, max_tokens=12, temperature=0, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].usage.completion_tokens == 12


def test_stop_strings_and_seeded_sampling(client):
    base = client.completions.create(model="two", prompt="hello", max_tokens=10, temperature=0)
    text = base.choices[0].text
    stop = text[3:5]
    if stop.strip():
        cut = client.completions.create(
            model="two", prompt="hello", max_tokens=10, temperature=0, stop=[stop]
        )
        assert cut.choices[0].text == text[: text.index(stop)]
        assert cut.choices[0].finish_reason == "stop"
    draws = [
        client.completions.create(
            model="two", prompt="hello", max_tokens=8, temperature=1.0, seed=5
        )
        .choices[0]
        .text
        for _ in range(2)
    ]
    assert draws[0] == draws[1]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "nope", "prompt": "x"}, 404, "not served here"),
        ({"model": "tiny", "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "tiny", "prompt": "x", "max_tokens": -3}, 400, "max_tokens"),
        ({"model": "tiny", "prompt": "x", "temperature": 9}, 400, "temperature"),
        ({"model": "tiny", "prompt": "x " * 3000, "max_tokens": 5}, 400, "context"),
        ({"model": "tiny", "prompt": "x", "max_tokens": 10**6}, 400, "context"),
        ({"prompt": "x"}, 400, "model is required"),
        ({"model": "tiny", "prompt": ["a", "b"]}, 400, "one prompt"),
        ({"model": "tiny", "prompt": "x", "n": 3}, 400, "n must be 1"),
    ],
)
def test_bad_requests_are_openai_errors_and_the_server_serves_on(server, body, status, words):
    got, answer = post(server, "/v1/completions", body)
    assert got == status, answer
    assert words in answer["error"]["message"] and answer["error"]["type"]
    ok, _ = post(server, "/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": 2})
    assert ok == 200


def test_malformed_json_and_a_wrong_shape(server):
    assert post(server, "/v1/chat/completions", None, raw=b"{not json")[0] == 400
    assert post(server, "/v1/chat/completions", [1, 2])[0] == 400
    status, answer = post(server, "/v1/chat/completions", {"model": "tiny", "messages": []})
    assert status == 400 and answer["error"]["param"] == "messages"


def test_the_openai_client_raises_its_own_errors(client):
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.completions.create(model="nope", prompt="x")
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model="tiny", prompt="x " * 3000, max_tokens=5)


@pytest.mark.parametrize(
    ("path_of", "words"),
    [
        (lambda m: m.base / "missing", "no such directory"),
        (lambda m: m.base, "whole model, not a LoRA adapter"),
        (lambda m: m.foreign, "was trained on"),
        (lambda m: m.prompt_tuning, "LoRA adapters only"),
    ],
)
def test_adapters_that_cannot_be_served_are_refused_at_load(server, models, path_of, words):
    status, answer = post(
        server, "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": str(path_of(models))}
    )
    assert status == 400 and words in answer["error"]["message"], answer
    assert "x" not in {m["id"] for m in _models(server)}


def test_load_replace_and_unload_without_a_restart(server, models, client):
    def answer(model: str) -> str:
        return (
            client.completions.create(model=model, prompt="hello", max_tokens=8, temperature=0)
            .choices[0]
            .text
        )

    one, two = answer("one"), answer("two")
    assert post(server, "/v1/load_lora_adapter", {"lora_name": "three", "lora_path": str(models.one)}) == (
        200, "Success: LoRA adapter 'three' added successfully."
    )  # fmt: skip
    assert answer("three") == one
    again = post(server, "/v1/load_lora_adapter", {"lora_name": "three", "lora_path": str(models.two)})  # fmt: skip
    assert again[0] == 400 and "load_inplace" in again[1]["error"]["message"]
    replaced = {"lora_name": "three", "lora_path": str(models.two), "load_inplace": True}
    assert post(server, "/v1/load_lora_adapter", replaced)[0] == 200
    assert answer("three") == two
    assert post(server, "/v1/unload_lora_adapter", {"lora_name": "three"})[0] == 200
    assert post(server, "/v1/unload_lora_adapter", {"lora_name": "three"})[0] == 404
    with pytest.raises(openai.NotFoundError):
        answer("three")
    assert answer("one") == one  # the others untouched


def test_a_client_that_leaves_mid_stream_frees_its_slot(server, client):
    stream = client.completions.create(
        model="one", prompt="hello", max_tokens=400, temperature=1.0, stream=True
    )
    next(iter(stream))
    stream.close()
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        metrics = _metrics(server)
        if 'lfm_requests_total{endpoint="completions",model="one",status="499"}' in metrics:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the abandoned stream was never ended")
    quick = client.completions.create(model="one", prompt="hi", max_tokens=2)
    assert quick.choices[0].finish_reason == "length"


def test_health_readiness_and_metrics(server, client):
    for path in ("/health", "/ready"):
        with urllib.request.urlopen(server.url + path) as response:
            assert response.status == 200
    client.completions.create(model="two", prompt="hi", max_tokens=3)
    metrics = _metrics(server)
    assert 'lfm_generated_tokens_total{model="two"}' in metrics
    assert "lfm_request_seconds_bucket" in metrics and "lfm_adapters_loaded" in metrics


def _models(server: Server) -> list[dict]:
    with urllib.request.urlopen(server.v1 + "/models") as response:
        return json.loads(response.read())["data"]


def _metrics(server: Server) -> str:
    with urllib.request.urlopen(server.url + "/metrics") as response:
        return response.read().decode()


def test_serving_beyond_this_machine_needs_api_keys(models, tmp_path: Path):
    from click.testing import CliRunner
    from lfm.cli import lfm

    refused = CliRunner().invoke(lfm, ["serve", str(models.base), "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and "API keys" in refused.output


def test_requests_from_elsewhere_and_odd_shapes(server):
    """No keys: only this machine, by name too (DNS rebinding); JSON only (a browser's
    cross-site text/plain); OpenAI's error shape for Starlette's own 404 and 405."""
    body = json.dumps({"model": "tiny", "prompt": "hi", "max_tokens": 2}).encode()

    def send(headers: dict[str, str], path: str = "/v1/completions") -> tuple[int, dict]:
        request = urllib.request.Request(server.url + path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            text = exc.read()
            return exc.code, json.loads(text) if text.startswith(b"{") else {}

    assert send({"Content-Type": "application/json", "Host": "evil.example"})[0] == 400
    status, answer = send({"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in answer["error"]["message"]
    status, answer = send({"Content-Type": "application/json"}, "/v1/nothing")
    assert status == 404 and answer["error"]["type"] == "invalid_request_error"
    ok, _ = post(server, "/v1/completions", {"model": "tiny", "prompt": "hi", "n": None})
    assert ok == 200
    status, answer = post(
        server, "/v1/completions", {"model": "tiny", "prompt": "x", "seed": 2**64}
    )
    assert status == 400 and answer["error"]["param"] == "seed"


def test_unloading_every_adapter_leaves_the_base_serving(server, models, client):
    """The last adapter out unwraps the plain base model (peft would point at a deleted one)."""
    before = client.completions.create(model="one", prompt="hello", max_tokens=6, temperature=0)
    base = client.completions.create(model="tiny", prompt="hello", max_tokens=6, temperature=0)
    for name in [m["id"] for m in _models(server) if m["parent"]]:
        assert post(server, "/v1/unload_lora_adapter", {"lora_name": name})[0] == 200
    again = client.completions.create(model="tiny", prompt="hello", max_tokens=6, temperature=0)
    assert again.choices[0].text == base.choices[0].text
    load = {"lora_name": "one", "lora_path": str(models.one)}
    assert post(server, "/v1/load_lora_adapter", load)[0] == 200
    after = client.completions.create(model="one", prompt="hello", max_tokens=6, temperature=0)
    assert after.choices[0].text == before.choices[0].text
