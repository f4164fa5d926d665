"""The local transformers generator with the tiny model, and reply parsing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lfm.dataset.create import create
from lfm.dataset.generators.base import GenerationSettings
from lfm.dataset.generators.llm import parse_pairs
from lfm.dataset.options import CreateOptions

DOCS = Path(__file__).resolve().parent / "docs"


def test_parse_json_reply_with_prose_around_it():
    reply = 'Sure!\n[{"question": "What is a probe?", "answer": "A rod."}, {"question": ""}]\nDone'
    assert parse_pairs(reply) == [("What is a probe?", "A rod.")]


def test_parse_q_and_a_lines():
    reply = "Q: What is a probe?\nA: A steel rod.\nQ: How long do batteries last?\nA: Two years."
    assert parse_pairs(reply) == [
        ("What is a probe?", "A steel rod."), ("How long do batteries last?", "Two years."),
    ]  # fmt: skip


def test_parse_nothing_useful():
    assert parse_pairs("I cannot help with that.") == []


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from lfm.runtime.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", chat_template=True)


def test_transformers_generator_runs_the_local_model(tiny_model, tmp_path):
    generation = GenerationSettings(
        backend="transformers", model=str(tiny_model), questions_per_chunk=1, max_new_tokens=12
    )
    from lfm.dataset.errors import DatasetError

    options = CreateOptions(
        sources=(str(DOCS / "faq.txt"), str(DOCS / "guide.md")),
        generation=generation,
        augmentation=True,
        workers=1,
    )
    # A tiny random model writes no JSON: the model runs on every chunk, each reply is counted
    # as unparsable (the run goes on to the end), and a run that keeps no record then fails,
    # saying so.
    with pytest.raises(DatasetError, match=r"(\d+) of the generator's replies were not") as err:
        create(options, tmp_path / "out.jsonl")
    replies = int(re.search(r"(\d+) of the generator's replies", str(err.value)).group(1))
    assert replies >= 2  # at least one per document's chunk
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_local_model_is_a_clear_error(tmp_path):
    pytest.importorskip("transformers")
    from lfm.dataset.errors import DatasetError

    generation = GenerationSettings(backend="transformers", model=str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="could not load generator model"):
        create(CreateOptions(sources=(str(DOCS / "faq.txt"),), generation=generation),
               tmp_path / "o.jsonl")  # fmt: skip
