"""Q&A a person would keep: the offline generator's questions, the well-formedness check that
catches template junk, and the judge a model generator adds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.dataset.chunking import ChunkSettings, chunk_sections, count_words
from lfm.dataset.generators.offline import OfflineGenerator, question_for
from lfm.dataset.quality.questions import answer_overlap, question_problem
from lfm.dataset.readers import read_file

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "examples" / "documents_to_model" / "tutorial"
# What a template generator made of sentence openers, from a new user's trial.
JUNK = [
    "What is When a variable?",
    "What is Your code?",
    "What are Because these?",
    "What is If the instance?",
    "What are Once you?",
    "What does It return?",
    "What is the?",
    "What is it?",
    "What is the the module?",
]
# Questions people and models write, which the check must let through.
GOOD = [
    "What does it mean for a function to be pure?",
    "What do you need to install before using pip?",
    "What is so special about generators?",
    "What does while True do?",
    "What does WHERE do in SQL?",
    "What is 'this' in JavaScript?",
    "What is a Python list made of?",
    "What can a decorator do for you?",
    "What is the difference between `is` and `==`?",
    "What does os.path.join() return?",
    "Что такое список в Python?",
]


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        ("A namespace is a mapping from names to objects.", "What is a namespace?"),
        (
            "The module used to create and manage virtual environments is called venv.",
            "What is the module used to create and manage virtual environments called?",
        ),
        (
            "The glob module provides a function for making file lists from directory wildcard "
            "searches:",
            "What does the glob module provide?",
        ),
        (
            "To implement a queue, use collections.deque which was designed to have fast appends.",
            "How do you implement a queue?",
        ),
        (
            "If a finally clause is present, the finally clause will execute as the last task.",
            "What happens if a finally clause is present?",
        ),
        (
            "Small anonymous functions can be created with the lambda keyword.",
            "How can small anonymous functions be created?",
        ),
        ("Representation error refers to the fact that most decimals are inexact.",
         "What does representation error refer to?"),
        ("When a variable is assigned, Python creates a name binding.",
         "What happens when a variable is assigned?"),
    ],
)  # fmt: skip
def test_questions_follow_the_sentence_grammar(sentence, question):
    assert question_for(sentence, sentence)[0] == question


@pytest.mark.parametrize(
    "sentence",
    [
        "Your code is run by the interpreter line by line.",  # pronoun subject
        "These are immutable, so tuples can be dictionary keys.",
        "Once you are really hooked, you can link Python into an application.",
        "The error is caused by the token preceding the arrow.",  # "the error": which one?
        "The first argument is the index of the element before which to insert.",
        "Many users are not aware of the approximation.",
        "Tuples are immutable, and usually contain a heterogeneous sequence of elements.",
        ">>> import glob is a statement that imports a module.",  # code is never an answer
        "Binary floating-point arithmetic holds many surprises like this.",  # like what?
        "Small files lfm reads from a model folder are read whole.",  # a relative clause
    ],
)
def test_sentences_that_lean_on_their_context_ask_nothing(sentence):
    assert question_for(sentence, sentence) is None


def test_the_check_catches_template_junk_and_passes_real_questions():
    assert all(question_problem(q) for q in JUNK)
    assert [q for q in GOOD if question_problem(q)] == []
    for good in ("What is a namespace?", "How do you implement a queue?",
                 "What does the for statement iterate over?", "Why are tuples immutable?",
                 "Which module creates virtual environments?"):  # fmt: skip
        assert question_problem(good) is None, good


def test_answer_overlap_measures_whether_the_answer_takes_the_question_up():
    assert answer_overlap("What is a namespace?", "A namespace maps names to objects.") == 1.0
    assert answer_overlap("What is a namespace?", "Bananas are yellow.") == 0.0


def test_the_tutorial_gives_well_over_a_hundred_pairs_and_no_junk():
    generator = OfflineGenerator()
    pairs = []
    for path in sorted(TUTORIAL.glob("*.html")):
        chunks = chunk_sections(path.name, read_file(path), ChunkSettings(256, 32), count_words)
        pairs += generator.pairs(chunks, [3] * len(chunks))
    assert len(pairs) > 100
    assert not [p.question for p in pairs if question_problem(p.question)]
    for pair in pairs:  # whole sentences of the chunk, the question's subject in them
        assert pair.answer[0].isupper() and pair.answer.endswith((".", "!"))
        assert " ".join(pair.answer.split()[:4]) in " ".join(pair.chunk.text.split())
        assert answer_overlap(pair.question, pair.answer) >= 0.5, pair


def _jsonl(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}) + "\n"
                            for q, a in pairs))  # fmt: skip
    return path


CLEAN = [
    ("What is a namespace?", "A namespace is a mapping from names to objects."),
    ("How do you implement a queue?", "To implement a queue, use collections.deque."),
    ("What are errors detected during execution called?",
     "Errors detected during execution are called exceptions."),
    ("What does the glob module provide?",
     "The glob module provides a function for making file lists from wildcard searches."),
]  # fmt: skip


def _check(path: Path, *flags: str) -> dict:
    report = path.with_suffix(".report.json")
    done = CliRunner().invoke(lfm, ["dataset", "check", str(path), "--report", str(report), *flags])
    assert done.exit_code == 0, done.output
    return json.loads(report.read_text())


def test_junk_questions_lower_quality_score_and_are_flagged(tmp_path):
    junk = [(q, "When a variable is assigned, Python binds a name to it.") for q in JUNK]
    clean = _jsonl(tmp_path / "clean.jsonl", CLEAN)
    mixed = _jsonl(tmp_path / "mixed.jsonl", CLEAN + junk)
    kept = _check(mixed)
    assert kept["filters"]["malformed_question"]["flagged"] == len(JUNK)
    assert kept["would_keep"] == len(CLEAN)
    # Left in (the check off), the junk pulls the dataset's quality_score down.
    clean_score = _check(clean, "--no-question-check")["metrics"]["quality_score"]
    mixed_score = _check(mixed, "--no-question-check")["metrics"]["quality_score"]
    assert mixed_score < clean_score - 0.05


class _Judge:
    """A model that rates every pair 2 of 5, and writes one pair per chunk."""

    name = "fake"

    def __call__(self, prompt: str, max_new_tokens: int | None = None) -> str:
        if prompt.startswith("Rate this"):
            return " 2."
        return '[{"question": "What is a probe?", "answer": "A probe is a steel rod."}]'


def test_a_model_judge_scores_and_filters_pairs(tmp_path, monkeypatch, docs):
    from lfm.dataset.create import create
    from lfm.dataset.generators import base
    from lfm.dataset.generators.base import GenerationSettings
    from lfm.dataset.generators.llm import LLMGenerator
    from lfm.dataset.options import CreateOptions
    from lfm.dataset.quality.checks import QualitySettings

    monkeypatch.setattr(base, "build_generator", lambda s: LLMGenerator(_Judge(), s))
    monkeypatch.setattr("lfm.dataset.create.build_generator", base.build_generator)
    generation = GenerationSettings(backend="transformers", model="fake", questions_per_doc=1)
    source = (str(docs / "guide.md"),)
    judged = create(
        CreateOptions(sources=source, generation=generation, workers=1,
                      quality=QualitySettings(model_judge=True)),
        tmp_path / "judged.jsonl",
    )  # fmt: skip
    plain = create(CreateOptions(sources=source, generation=generation, workers=1),
                   tmp_path / "plain.jsonl")  # fmt: skip
    # Rated 2 of 5 (0.25): the pair's quality score counts it.
    assert judged["metrics"]["quality_score"] < plain["metrics"]["quality_score"]
    from lfm.dataset.errors import DatasetError

    with pytest.raises(DatasetError, match="no records were kept.*low_judge_score"):
        create(CreateOptions(sources=source, generation=generation, workers=1,
                             quality=QualitySettings(min_judge_score=0.5)),
               tmp_path / "strict.jsonl")  # fmt: skip


def test_a_judge_needs_a_model():
    from lfm.dataset.errors import DatasetError
    from lfm.dataset.options import CreateOptions
    from lfm.dataset.quality.checks import QualitySettings

    with pytest.raises(DatasetError, match="offline generator has none"):
        CreateOptions(sources=("docs",), quality=QualitySettings(model_judge=True))


def test_a_local_model_answers_in_batches_and_from_its_cache(tmp_path):
    pytest.importorskip("torch")
    from lfm.dataset.generators.cache import ReplyCache
    from lfm.dataset.generators.transformers_client import TransformersClient
    from lfm.runtime.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny", chat_template=True)
    prompts = [f"Write a question about probe {i}." for i in range(5)]
    client = TransformersClient(str(model), 6, batch_size=4, cache=ReplyCache(tmp_path / "cache"))
    first = client.complete_many(prompts)
    assert client.stats["batches"] == 2 and client.stats["generations"] == 5
    # Batched and padded on the left, each reply is what the prompt alone gets.
    assert first[0] == TransformersClient(str(model), 6)(prompts[0])
    again = TransformersClient(str(model), 6, cache=ReplyCache(tmp_path / "cache"))
    assert again.complete_many(prompts) == first
    assert again.stats["cache_hits"] == 5 and again.stats["generations"] == 0


def test_documents_without_usable_pairs_are_named_and_nothing_trains_on_nothing(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Probes\n\nA probe is a steel rod with three electrodes.\n")
    # Sentences, but none a question can stand on: pronoun subjects, asides, code.
    (docs / "chatter.md").write_text(
        "# Notes\n\nIt works. They said so, and we agreed with them at once.\n\n"
        ">>> print('hello world from the interpreter prompt here')\n"
    )
    out = tmp_path / "qa.jsonl"
    done = CliRunner().invoke(lfm, ["dataset", "create", "--source", str(docs), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "no records from chatter.md: no sentence in it that a question could be asked of" in (
        done.output
    )
    report = json.loads((tmp_path / "qa.report.json").read_text())
    assert [d["file"] for d in report["documents"]["without_records"]] == ["chatter.md"]
    assert "chatter.md" in (tmp_path / "qa.README.md").read_text()
    # Only such documents: a clear error naming each, exit 1, and no dataset written.
    (docs / "good.md").unlink()
    failed = CliRunner().invoke(
        lfm, ["dataset", "create", "--source", str(docs), "-o", str(tmp_path / "none.jsonl")]
    )
    assert failed.exit_code == 1
    assert "chatter.md: no sentence in it that a question could be asked of" in failed.output
    assert not (tmp_path / "none.jsonl").exists()


@pytest.mark.parametrize(
    "question", ["What does os.path.join() return?", "What is new in Python 3.12?"]
)
def test_a_dot_inside_a_name_does_not_cut_the_question(question):
    from lfm.dataset.quality.questions import question_in

    assert question_in(f"Answer the following question: {question}") == question
    assert question_problem(question_in(question)) is None


def test_a_comment_opening_a_code_block_is_not_a_heading():
    from lfm.dataset.html_reader import html_sections

    sections = html_sections(
        "<h1>Matching</h1><p>A pattern is a shape.</p>"
        "<pre># point is an (x, y) tuple\nmatch point:</pre><p>More prose here.</p>"
    )
    assert [s.heading for s in sections] == ["Matching"]
    assert "# point is an (x, y) tuple" in sections[0].text


def test_a_question_may_point_at_the_passage_its_record_shows(tmp_path):
    record = {"instruction": "What is this?", "output": "It is a function that returns a list."}
    bare = _jsonl(tmp_path / "bare.jsonl", [(record["instruction"], record["output"])])
    assert _check(bare)["filters"]["malformed_question"]["flagged"] == 1
    shown = tmp_path / "shown.jsonl"
    shown.write_text(json.dumps({**record, "input": "def listing(): return [1, 2]"}) + "\n")
    assert _check(shown)["filters"]["malformed_question"]["flagged"] == 0


def test_a_question_inside_the_passage_is_not_the_records_question(tmp_path):
    """RAG-style records append the passage to the question: its questions are not judged."""
    record = {
        "instruction": "What is a tuple?",
        "input": "A tuple is an immutable sequence. What do you gain from that? Safety.",
        "output": "A tuple is an immutable sequence of values.",
    }
    path = tmp_path / "rag.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert _check(path)["filters"]["malformed_question"]["flagged"] == 0


def test_a_split_that_leaves_nothing_to_train_on_is_an_error(tmp_path):
    from lfm.dataset.create import create
    from lfm.dataset.errors import DatasetError
    from lfm.dataset.options import CreateOptions

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Probes\n\nA probe is a steel rod with three electrodes.\n")
    (docs / "b.md").write_text("It works.\n")  # gives no record
    for seed in range(40):  # a seed that holds out the one document with records
        options = CreateOptions(sources=(str(docs),), split_ratio=0.5, seed=seed, workers=1)
        from lfm.dataset.splits import holdout_documents

        if holdout_documents(["a.md", "b.md"], 0.5, seed) == {"a.md"}:
            break
    with pytest.raises(DatasetError, match="nothing to train on"):
        create(options, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
