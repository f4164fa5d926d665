"""End to end on the tiny model: `lfm dataset create -> lfm compile -> python train.py`, and a
bundle whose `dataset.source` is a folder of documents (built once, cached by content hash)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def lfm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "lfm.cli", *args, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs-project")
    shutil.copytree(REPO / "examples" / "documents", root / "documents")
    shutil.copy(REPO / "examples" / "documents_qa.yaml", root / "documents_qa.yaml")
    lfm("dev", "tiny-model", "tiny-model", cwd=root)
    return root


def _metrics(bundle: Path) -> dict:
    return json.loads((bundle / "output" / "metrics.json").read_text())


def test_create_then_compile_then_train(project):
    lfm("dataset", "create", "--config", "documents_qa.yaml", "-o", "datasets/qa.jsonl",
        "--split-ratio", "0", cwd=project)  # fmt: skip
    records = (project / "datasets" / "qa.jsonl").read_text().splitlines()
    assert len(records) >= 8
    config = (project / "documents_qa.yaml").read_text()
    config = config.replace("type: documents", "type: local").replace(
        "path: ./documents/", "path: ./datasets/qa.jsonl"
    )
    (project / "local_qa.yaml").write_text(config)
    lfm("compile", "local_qa.yaml", "-o", "build/local_qa", cwd=project)
    run(sys.executable, "build/local_qa/train.py", cwd=project)
    assert (project / "build/local_qa/output/adapter_model.safetensors").exists()


def test_document_source_bundle_builds_once_and_trains(project):
    lfm("compile", "documents_qa.yaml", "-o", "build/docs", cwd=project)
    bundle = project / "build" / "docs"
    done = run(sys.executable, "build/docs/train.py", cwd=project)
    assert "Building the dataset" in done.stderr
    built = [p for p in (bundle / ".lfm-dataset").iterdir() if p.is_dir()]
    assert len(built) == 1
    report = json.loads((built[0] / "dataset_report.json").read_text())
    assert report["records"]["train"] > 0 and report["records"]["test"] > 0
    assert report["settings"]["tokenizer"]  # chunks counted with the base model's tokenizer
    assert 0 < report["metrics"]["domain_relevance"] <= 1  # the example scores it
    metrics = _metrics(bundle)
    assert metrics["steps"] and metrics["final_loss"] == metrics["final_loss"]  # not NaN
    evals = [row["eval_loss"] for row in metrics["eval"]]  # the held-out documents
    assert evals and evals[-1] < evals[0]
    assert (bundle / "output" / "adapter_model.safetensors").exists()

    # Same documents and settings: the cached dataset is reused, not rebuilt.
    from lfm.dataset.bundle import build_documents
    from lfm.runtime.data import DatasetSpec, load_sft_dataset
    from lfm.runtime.modeling import load_tokenizer

    tokenizer = load_tokenizer("../../tiny-model", base_dir=bundle)
    spec = DatasetSpec("documents", "../../documents", "alpaca", 256, 0.2, seed=42,
                       documents={"chunk_size": 256, "chunk_overlap": 32,
                                  "include_metadata": True, "augmentation": True,
                                  "qa_generation": {"questions_per_doc": 4},
                                  "quality_control": {"minimum_length": 20,
                                                      "maximum_length": 2048,
                                                      "toxicity_filter": True,
                                                      "domain_relevance": True,
                                                      "gates": {"diversity_score": ">0.15",
                                                                "quality_score": ">0.8"}}},
                       build_documents=build_documents)  # fmt: skip
    before = built[0].stat().st_mtime_ns
    train, test = load_sft_dataset(spec, tokenizer, base_dir=bundle)
    assert len(train) > 0 and test is not None
    assert [p for p in (bundle / ".lfm-dataset").iterdir() if p.is_dir()] == built
    assert built[0].stat().st_mtime_ns == before

    # evaluate.py's holdout is the documents training held out, read from the same build.
    from lfm.runtime.evaluation import holdout_set

    held = holdout_set(spec, tokenizer, base_dir=bundle, chunk_tokenizer="../../tiny-model")
    assert len(held.examples) == len(test)
    assert [p for p in (bundle / ".lfm-dataset").iterdir() if p.is_dir()] == built
    assert built[0].stat().st_mtime_ns == before

    # A changed document builds a new dataset (and drops the stale one).
    (project / "documents" / "faq.txt").write_text(
        "The pump is the part that moves water from the well to the valves.\n"
    )
    load_sft_dataset(spec, tokenizer, base_dir=bundle)
    rebuilt = [p for p in (bundle / ".lfm-dataset").iterdir() if p.is_dir()]
    assert len(rebuilt) == 1 and rebuilt != built
