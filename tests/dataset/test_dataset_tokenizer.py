"""`lfm dataset create --config` counts chunk tokens with the config's base model tokenizer when
it loads offline (a local folder, or a hub id in the local cache), else words with a notice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm

pytest.importorskip("transformers")

DOCS = Path(__file__).resolve().parent / "docs"


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory) -> Path:
    from lfm.runtime.tiny import build_tiny_model

    # A 512-token byte-level BPE: it needs several tokens for most words, so the chunk counts
    # differ clearly from counting words.
    return build_tiny_model(tmp_path_factory.mktemp("tok") / "tiny", pretrain_steps=0)


def _project(tmp_path: Path, base_model: str) -> Path:
    shutil.copy(DOCS / "guide.md", tmp_path / "guide.md")
    config = tmp_path / "model.yaml"
    config.write_text(
        "model_config:\n"
        f"  base_model: {base_model}\n"
        "  dataset:\n"
        "    source: {type: documents, path: ./guide.md}\n"
        "    preprocessing: {chunk_size: 64, chunk_overlap: 0}\n"
    )
    return config


def _create(config: Path, *extra: str) -> tuple[str, dict]:
    out = config.parent / f"out{len(extra)}.jsonl"
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--config", str(config), "-o", str(out), "--force", *extra]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(out.with_suffix(".report.json").read_text())
    return done.output, report


def test_local_base_model_tokenizer_counts_the_chunks(tmp_path, tiny_tokenizer):
    shutil.copytree(tiny_tokenizer, tmp_path / "tiny-model")
    config = _project(tmp_path, "./tiny-model")
    output, report = _create(config)
    assert "note:" not in output
    assert Path(report["settings"]["tokenizer"]) == tmp_path / "tiny-model"
    _, words = _create(config, "--tokenizer", "words")
    assert words["settings"]["tokenizer"] is None
    # The tiny BPE splits words: the same text makes more 64-token chunks than 64-word ones.
    assert report["chunks"] > words["chunks"]


def test_hub_id_in_the_local_cache_is_used_offline(tmp_path, tiny_tokenizer, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "models--tiny-org--tiny-model"
    shutil.copytree(tiny_tokenizer, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = _project(tmp_path, "tiny-org/tiny-model")
    output, report = _create(config)
    assert "note:" not in output
    assert report["settings"]["tokenizer"] == "tiny-org/tiny-model"
    _, words = _create(config, "--tokenizer", "words")
    assert report["chunks"] > words["chunks"]


def test_uncached_hub_id_falls_back_to_words_with_a_notice(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    config = _project(tmp_path, "some-org/not-downloaded")
    output, report = _create(config)
    notes = [line for line in output.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: chunk sizes counted in words: base_model 'some-org/not-downloaded' is not in the "
        "local Hugging Face cache"
    ]
    assert report["settings"]["tokenizer"] is None


def test_missing_local_base_model_falls_back_to_words(tmp_path):
    config = _project(tmp_path, "./no-such-model")
    output, report = _create(config)
    assert "counted in words: base_model" in output and "no-such-model" in output
    assert report["settings"]["tokenizer"] is None
