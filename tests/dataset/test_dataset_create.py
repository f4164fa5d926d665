"""`lfm dataset create` end to end on the sample documents: outputs, report, card, splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm, llamafarm
from lfm.dataset.create import create
from lfm.dataset.options import CreateOptions
from lfm.dataset.splits import holdout_documents

DOCS = Path(__file__).resolve().parent / "docs"
REPO = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("create") / "qa"
    create(
        CreateOptions(sources=(str(DOCS),), split_ratio=0.3, include_metadata=True, workers=1),
        out,
    )
    return out


def test_folder_output_has_data_report_card_and_histogram(built):
    assert sorted(p.name for p in built.iterdir()) == [
        "README.md", "dataset_report.json", "length_histogram.png", "test.jsonl", "train.jsonl",
    ]  # fmt: skip
    assert (built / "length_histogram.png").read_bytes().startswith(b"\x89PNG")
    report = json.loads((built / "dataset_report.json").read_text())
    skipped = {s["file"]: s["reason"] for s in report["documents"]["skipped"]}
    assert set(skipped) == {"broken.pdf", "firmware.txt", "locked.pdf", "photo.png"}
    assert report["documents"]["read"] == 8
    assert report["records"]["kept"] == len(_lines(built / "train.jsonl")) + len(
        _lines(built / "test.jsonl")
    )
    assert set(report["filters"]) >= {"near_duplicate", "pii", "too_short", "toxic"}
    assert report["pii_redacted"]["EMAIL"] >= 1
    card = (built / "README.md").read_text()
    assert "length_histogram.png" in card and "broken.pdf" in card and "## Examples" in card


def test_records_are_alpaca_with_metadata_and_no_pii(built):
    records = _lines(built / "train.jsonl") + _lines(built / "test.jsonl")
    assert all({"instruction", "input", "output", "metadata"} <= set(r) for r in records)
    assert all("help@orchard.example" not in json.dumps(r) for r in records)
    pdf = [r for r in records if r["metadata"]["source"] == "manual.pdf"]
    assert pdf and all(r["metadata"]["page"] in (1, 2) for r in pdf)
    sections = {r["metadata"].get("section") for r in records}
    assert "Calibration" in sections


def test_split_is_by_document_with_no_leak(built):
    train = {r["metadata"]["source"] for r in _lines(built / "train.jsonl")}
    test = {r["metadata"]["source"] for r in _lines(built / "test.jsonl")}
    assert train and test and not train & test


def test_holdout_is_seeded_and_bounded():
    names = [f"doc{i}" for i in range(10)]
    assert holdout_documents(names, 0.2, 1) == holdout_documents(reversed(names), 0.2, 1)
    assert len(holdout_documents(names, 0.2, 1)) == 2
    assert holdout_documents(names, 0.2, 1) != holdout_documents(names, 0.2, 2)
    assert len(holdout_documents(["a", "b"], 0.9, 0)) == 1
    assert holdout_documents(["a"], 0.5, 0) == frozenset()


def test_questions_per_doc_is_honored(tmp_path):
    out = tmp_path / "one.jsonl"
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--source", str(DOCS / "guide.md"), "--questions-per-doc", "1",
              "-o", str(out), "--include-metadata", "--no-dedup"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert len(_lines(out)) == 1
    out2 = tmp_path / "chunks.jsonl"
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--source", str(DOCS / "guide.md"), "--questions-per-chunk",
              "2", "--chunk-size", "40", "--chunk-overlap", "0", "-o", str(out2), "--no-dedup"],
    )  # fmt: skip
    report = json.loads((tmp_path / "chunks.report.json").read_text())
    assert done.exit_code == 0 and report["chunks"] >= 4
    assert report["generated_pairs"] <= 2 * report["chunks"]
    assert report["generated_pairs"] >= 3


def test_seed_spelling_and_rerun_needs_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["models", "create-dataset", "--source", str(DOCS), "--format", "alpaca"]
    done = runner.invoke(llamafarm, args)
    assert done.exit_code == 0, done.output
    data = tmp_path / "datasets" / "docs.jsonl"
    before = data.read_bytes()
    again = runner.invoke(llamafarm, [*args, "--format", "chatml"])
    assert again.exit_code == 1 and "--force" in again.output
    assert data.read_bytes() == before  # nothing lost
    forced = runner.invoke(llamafarm, [*args, "--format", "chatml", "--force"])
    assert forced.exit_code == 0 and "messages" in data.read_text()


def test_failed_run_leaves_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "qa"
    create(CreateOptions(sources=(str(DOCS / "guide.md"),)), out)
    before = (out / "train.jsonl").read_bytes()

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lfm.dataset.create.write_outputs", explode)
    with pytest.raises(KeyboardInterrupt):
        create(CreateOptions(sources=(str(DOCS),)), out, force=True)
    assert (out / "train.jsonl").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["qa"]  # no staging folder left


def test_completion_format_writes_chunks(tmp_path):
    out = tmp_path / "text.jsonl"
    create(CreateOptions(sources=(str(DOCS / "guide.md"),), format="completion"), out)
    texts = [r["text"] for r in _lines(out)]
    assert any("Calibration is the process" in t for t in texts)


def test_missing_source_cli_error(tmp_path):
    done = CliRunner().invoke(lfm, ["dataset", "create", "--source", str(tmp_path / "nope")])
    assert done.exit_code == 1 and "does not exist" in done.output
    assert "Traceback" not in done.output


def test_augmentation_adds_variants_kept_by_dedup(tmp_path):
    out = tmp_path / "aug.jsonl"
    report = create(
        CreateOptions(sources=(str(DOCS / "guide.md"),), augmentation=True, include_metadata=True),
        out,
    )
    kinds = [r["metadata"]["kind"] for r in _lines(out)]
    assert kinds.count("template") == report["augmented_pairs"] > 0
    assert report["filters"]["near_duplicate"]["removed"] == 0


def test_check_reports_without_removing(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [
        {"instruction": "What is a probe?", "input": "", "output": "A steel rod with electrodes."},
        {"instruction": "What is a probe?", "input": "", "output": "A steel rod with electrodes."},
        {"instruction": "Probe?", "input": "", "output": "A rod."},
        {
            "instruction": "Where do I ask?",
            "input": "",
            "output": "Mail the team at a@b.example for parts.",
        },
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report_path = tmp_path / "r.json"
    done = CliRunner().invoke(
        lfm, ["dataset", "check", str(data), "--min-length", "30", "--report", str(report_path)]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(report_path.read_text())
    assert report["filters"]["exact_duplicate"]["flagged"] == 1
    assert report["filters"]["too_short"]["flagged"] == 1
    assert report["pii_found"] == {"EMAIL": 1}
    assert len(data.read_text().splitlines()) == 4
    strict = CliRunner().invoke(lfm, ["dataset", "check", str(data), "--strict"])
    assert strict.exit_code == 1


def test_worker_processes_give_the_same_dataset(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"doc{i:02}.md").write_text(
            f"# Topic {i}\n\nWidget {i} is a part that holds shelf {i} against the wall. "
            f"It carries {i * 3} kilograms when mounted with two screws.\n"
        )
    one = create(CreateOptions(sources=(str(corpus),), workers=1, split_ratio=0.25), tmp_path / "a")
    two = create(CreateOptions(sources=(str(corpus),), workers=2, split_ratio=0.25), tmp_path / "b")
    for name in ("train.jsonl", "test.jsonl", "dataset_report.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert one["records"] == two["records"] and one["records"]["test"] > 0


def test_config_errors_print_like_validate(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model_config:\n  base_model: m\n  dataset: {source: {type: documents, path: ./d}, preprocessing: {chunk_size: 64, chunk_overlap: 60}}\n"
    )
    done = CliRunner().invoke(lfm, ["dataset", "create", "--config", str(bad)])
    assert done.exit_code == 1 and "less than half of chunk_size" in done.output
    assert "Traceback" not in done.output


def test_include_context_puts_the_chunk_in_the_input(tmp_path):
    out = tmp_path / "ctx.jsonl"
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--source", str(DOCS / "faq.txt"), "--include-context",
              "--questions-per-doc", "1", "-o", str(out)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    record = _lines(out)[0]
    # The answer is sentences of the chunk, with line breaks inside a paragraph made spaces.
    assert record["input"] and record["output"] in " ".join(record["input"].split())


def test_force_never_replaces_sources_or_foreign_folders(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nA widget is a part that holds a shelf against the wall.\n")
    from lfm.dataset.errors import DatasetError

    with pytest.raises(DatasetError, match="would overwrite the source"):
        create(CreateOptions(sources=(str(docs),)), docs, force=True)
    with pytest.raises(DatasetError, match="would overwrite the source"):
        create(CreateOptions(sources=(str(docs / "a.md"),)), docs / "a.md", force=True)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="did not write"):
        create(CreateOptions(sources=(str(docs),)), other, force=True)
    assert (other / "keep.jpg").exists() and (docs / "a.md").exists()


def test_with_a_config_the_default_output_goes_beside_it(tmp_path, monkeypatch):
    """As every path of a config is relative to it, so is where its dataset lands."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "examples" / "documents", project / "documents")
    shutil.copy(REPO / "examples" / "documents_qa.yaml", project / "documents_qa.yaml")
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--config", "project/documents_qa.yaml", "--workers", "1"]
    )
    assert done.exit_code in (0, 1), done.output  # 1: written, but a gate of the example failed
    assert (project / "datasets" / "documents.jsonl").is_file(), done.output
    assert not (tmp_path / "datasets").exists() and not (tmp_path / ".lfm-cache").exists()


def test_a_run_that_keeps_nothing_fails_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"\x00\x01 not a pdf")
    done = CliRunner().invoke(lfm, ["dataset", "create", "--source", "docs", "-o", "out.jsonl"])
    assert done.exit_code == 1
    assert "no records were kept from 1 document(s)" in done.output
    assert "broken.pdf" in done.output and "nothing was written" in done.output
    assert not list(tmp_path.glob("out*"))
