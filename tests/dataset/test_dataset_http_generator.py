"""The OpenAI-compatible generator against a real server process on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.dataset.create import create
from lfm.dataset.errors import DatasetError
from lfm.dataset.generators.base import GenerationSettings
from lfm.dataset.options import CreateOptions

HERE = Path(__file__).resolve().parent
DOCS = HERE / "docs"
KEY = "sk-test-not-a-real-key"


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "openai_compatible_server.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("PORT "), line
    return process, f"http://127.0.0.1:{line.split()[1]}/v1"


@pytest.fixture
def server() -> Iterator[str]:
    process, url = _start("--fail-first", "2", "--key", KEY, "--delay", "0.05")
    yield url
    process.terminate()
    process.wait(timeout=10)


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url.rsplit("/v1", 1)[0] + "/stats", timeout=5) as response:
        return json.loads(response.read())


def _options(url: str, cache: Path, **generation: object) -> CreateOptions:
    settings = {
        "backend": "openai", "model": "test-model", "base_url": url, "api_key_env": "LFM_TEST_API_KEY",
        "cache_dir": cache, "questions_per_chunk": 2, "concurrency": 4, **generation,
    }  # fmt: skip
    return CreateOptions(
        sources=(str(DOCS / "guide.md"), str(DOCS / "faq.txt")),
        generation=GenerationSettings(**settings),  # type: ignore[arg-type]
        include_metadata=True,
        workers=1,
    )


def test_generates_retries_and_caches(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LFM_TEST_API_KEY", KEY)
    cache = tmp_path / "cache"
    report = create(_options(server, cache), tmp_path / "a.jsonl")
    records = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert records and all(r["metadata"]["kind"] == "llm" for r in records)
    assert any("moisture" in r["output"] for r in records)
    stats = _stats(server)
    assert stats["rejected"] == 2 and stats["bad_auth"] == 0
    assert report["generator"]["stats"]["retries"] == 2
    assert stats["max_in_flight"] > 1  # concurrent requests
    first = stats["answered"]
    # A rerun is served from the cache: the server sees no new request.
    again = create(_options(server, cache), tmp_path / "b.jsonl")
    assert _stats(server)["answered"] == first
    assert again["generator"]["stats"]["cache_hits"] == first
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()


def test_rate_limit_spaces_requests(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LFM_TEST_API_KEY", KEY)
    create(_options(server, tmp_path / "c", requests_per_minute=600), tmp_path / "r.jsonl")
    times = _stats(server)["times"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) >= 4 and min(gaps) >= 0.08  # 600/min: one start per 0.1 s


def test_wrong_key_counts_failures_without_crashing(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LFM_TEST_API_KEY", "wrong")
    # Every request fails: the run keeps nothing, which is a failure that says why.
    with pytest.raises(DatasetError, match=r"no records were kept .* generator's requests failed"):
        create(_options(server, tmp_path / "d", max_retries=0), tmp_path / "w.jsonl")
    assert not (tmp_path / "w.jsonl").exists()


def test_missing_key_variable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LFM_TEST_API_KEY", raising=False)
    with pytest.raises(DatasetError, match="LFM_TEST_API_KEY is not set"):
        create(_options("http://127.0.0.1:9/v1", tmp_path / "e"), tmp_path / "x.jsonl")


def test_cli_with_paraphrase_augmentation(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LFM_TEST_API_KEY", KEY)
    out = tmp_path / "cli.jsonl"
    done = CliRunner().invoke(
        lfm,
        ["dataset", "create", "--source", str(DOCS / "faq.txt"), "--model", "test-model",
         "--base-url", server, "--api-key-env", "LFM_TEST_API_KEY", "--augment",
         "--include-metadata", "--cache-dir", str(tmp_path / "cache"), "-o", str(out)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    kinds = {json.loads(x)["metadata"]["kind"] for x in out.read_text().splitlines()}
    assert kinds == {"llm", "template", "paraphrase"}
    assert KEY not in out.read_text() + (tmp_path / "cli.report.json").read_text()
