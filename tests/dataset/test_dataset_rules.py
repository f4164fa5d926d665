"""Compiler rules and plan for document sources (no lfm.dataset import: the compile path)."""

from __future__ import annotations

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config


def cfg(dataset: str) -> str:
    return f"model_config:\n  base_model: meta-llama/Llama-2-7b-hf\n  dataset:\n{dataset}"


DOCS = "    source: {type: documents, path: ./docs/}\n"


def test_documents_default_to_alpaca_and_reach_train_py(write_config, tmp_path):
    (tmp_path / "docs").mkdir()
    path = write_config(cfg(DOCS + "    quality_control: {pii: drop, minimum_length: 30}\n"))
    analysis = analyze(path)
    decisions = {d.path: d for d in analysis.resolved.decisions}
    fmt = decisions["model_config.dataset.preprocessing.format"]
    assert (fmt.value, fmt.rule) == ("alpaca", "document_dataset")
    files = compile_config(path, tmp_path / "b").files
    train = files["train.py"]
    assert 'source_type="documents"' in train and '"pii": "drop"' in train
    assert '"minimum_length": 30' in train
    assert "datasketch==" in files["requirements.txt"]
    # The bundle carries the dataset pipeline that builds its records, installed with the runtime.
    assert "./lfm-runtime" in files["requirements.txt"].splitlines()
    assert "lfm-runtime/lfm/dataset/bundle.py" in files
    assert "lfm-runtime/lfm/runtime/data.py" in files
    assert ".lfm-dataset/" in files[".gitignore"]
    warned = " ".join(d.message for d in analysis.diagnostics)
    assert "quality_control" not in warned  # used now: no "not yet" warning


def test_local_sources_do_not_need_the_dataset_extra(write_config, tmp_path):
    files = compile_config(write_config(cfg("    source: {type: local}\n")), tmp_path / "b").files
    assert "datasketch" not in files["requirements.txt"] and "documents=" not in files["train.py"]


def test_quality_control_on_a_local_dataset_is_named(write_config):
    analysis = analyze(write_config(cfg("    quality_control: {minimum_length: 10}\n")))
    warned = " ".join(d.message for d in analysis.diagnostics)
    assert "shapes datasets built from documents" in warned


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    preprocessing: {chunk_size: 64, chunk_overlap: 40}\n", "less than half"),
        ("    preprocessing: {qa_generation: {backend: openai, model: m}}\n", "needs base_url"),
        ("    preprocessing: {qa_generation: {backend: transformers}}\n", "needs a model name"),
    ],
)
def test_document_settings_errors(write_config, extra, message):
    with pytest.raises(CompileError) as caught:
        analyze(write_config(cfg(DOCS + extra)))
    assert message in " ".join(d.message for d in caught.value.diagnostics)


def test_api_key_in_config_is_rejected_key_env_is_accepted(write_config):
    with pytest.raises(CompileError):
        analyze(write_config(cfg(DOCS + "    preprocessing: {qa_generation: {api_key: sk-1}}\n")))
    ok = "    preprocessing: {qa_generation: {model: m, base_url: 'https://x.example/v1', api_key_env: MY_API_KEY}}\n"
    analyze(write_config(cfg(DOCS + ok)))


@pytest.mark.parametrize(
    "args", [["dataset", "--help"], ["compile", "examples/documents_qa.yaml", "-o", "{tmp}/b"]]
)
def test_compile_side_stays_light_with_document_sources(args, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    probe = (
        "import sys\nfrom lfm.cli import lfm\n"
        "try:\n    lfm.main(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'transformers', 'datasketch', 'pypdf', 'matplotlib', 'bs4', 'lfm.dataset'}\n"
        "print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m in heavy)))\n"
    )
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], cwd=repo, capture_output=True, text=True
    )
    assert "HEAVY:\n" in done.stdout, done.stdout + done.stderr
