"""The seed's nested quality_control block (filters / validation / metrics): compile-side
mapping to the flat settings, dataset gates in `lfm dataset create|check`, coverage section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config
from lfm.runtime.dataset_gates import Gate, GateError, evaluate, failures, parse_gate

DOCS = Path(__file__).resolve().parent / "docs"

SEED_QC = """\
    quality_control:
      filters:
        minimum_length: 20
        maximum_length: 2048
        language_detection: "en"
        toxicity_threshold: 0.1
        factual_consistency: 0.8
      validation:
        duplicate_detection: true
        coherence_scoring: true
        domain_relevance: true
      metrics:
        diversity_score: "{diversity}"
        quality_score: ">0.8"
        coverage_analysis: {coverage}
"""


def cfg(qc: str) -> str:
    return (
        "model_config:\n  base_model: meta-llama/Llama-2-7b-hf\n  dataset:\n"
        "    source: {type: documents, path: ./docs/, include_metadata: true}\n" + qc
    )


def seed_qc(diversity: str = ">0.7", coverage: str = "true") -> str:
    return SEED_QC.format(diversity=diversity, coverage=coverage)


def test_seed_nested_block_maps_to_flat_settings_with_reasons(write_config, tmp_path):
    (tmp_path / "docs").mkdir()
    path = write_config(cfg(seed_qc()))
    analysis = analyze(path)
    qc = analysis.resolved.config["dataset"]["quality_control"]
    assert not {"filters", "validation", "metrics"} & set(qc)  # one shape after resolving
    assert qc["language"] == "en" and qc["minimum_length"] == 20
    assert qc["toxicity_filter"] is True and qc["toxicity_threshold"] == 0.1
    assert qc["factual_verification"] is True and qc["factual_consistency"] == 0.8
    assert qc["gates"] == {"diversity_score": ">0.7", "quality_score": ">0.8"}
    decisions = {d.path: d for d in analysis.resolved.decisions}
    language = decisions["model_config.dataset.quality_control.language"]
    assert language.rule == "quality_control_shape"
    assert "quality_control.filters.language_detection" in language.reason
    assert "config.yaml:9" in language.reason  # where the nested value was written
    dedup = decisions["model_config.dataset.quality_control.duplicate_detection"]
    assert "validation.duplicate_detection" in dedup.reason
    warned = [d.message for d in analysis.diagnostics if d.level == "warning"]
    assert qc["coherence_scoring"] is True  # scored: no warning
    assert not any("coherence_scoring" in m for m in warned)
    assert qc["domain_relevance"] is True  # scored too: no warning
    assert not any("domain_relevance" in m for m in warned)
    relevance = decisions["model_config.dataset.quality_control.domain_relevance"]
    assert "validation.domain_relevance" in relevance.reason
    train = compile_config(path, tmp_path / "b").files["train.py"]
    assert '"language": "en"' in train and '"language_detection"' not in train


def test_flat_keys_still_work(write_config, tmp_path):
    (tmp_path / "docs").mkdir()
    qc = "    quality_control: {language: en, gates: {quality_score: 0.5}}\n"
    resolved = analyze(write_config(cfg(qc))).resolved.config["dataset"]["quality_control"]
    assert resolved["language"] == "en" and resolved["gates"] == {"quality_score": 0.5}


@pytest.mark.parametrize(
    ("qc", "message"),
    [
        (
            "    quality_control: {language: en, filters: {language_detection: de}}\n",
            "quality_control.filters.language_detection and quality_control.language set the "
            "same thing",
        ),
        (
            "    quality_control: {gates: {diversity_score: 0.5}, "
            "metrics: {diversity_score: '>0.6'}}\n",
            "quality_control.metrics.diversity_score and quality_control.gates.diversity_score",
        ),
        (
            "    quality_control: {metrics: {diversity_score: 'high'}}\n",
            "diversity_score threshold 'high' is not a comparison with a number",
        ),
        (
            "    quality_control: {gates: {quality_score: '=>0.5'}}\n",
            "quality_score threshold '=>0.5' is not a comparison",
        ),
    ],
)
def test_conflicts_and_bad_thresholds_are_compile_errors(write_config, tmp_path, qc, message):
    (tmp_path / "docs").mkdir()
    with pytest.raises(CompileError) as caught:
        analyze(write_config(cfg(qc)))
    assert any(message in d.message for d in caught.value.diagnostics), caught.value.diagnostics


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        (">0.7", Gate("quality_score", ">", 0.7)),
        (" >= 0.7 ", Gate("quality_score", ">=", 0.7)),
        ("<0.2", Gate("quality_score", "<", 0.2)),
        ("<=.2", Gate("quality_score", "<=", 0.2)),
        ("0.6", Gate("quality_score", ">=", 0.6)),
        (0.6, Gate("quality_score", ">=", 0.6)),
        (1, Gate("quality_score", ">=", 1.0)),
    ],
)
def test_gate_thresholds_parse(text, gate):
    assert parse_gate("quality_score", text) == gate


@pytest.mark.parametrize("bad", ["", "> ", "0.7>", "high", "=0.7", True, None, [0.7]])
def test_bad_gate_thresholds_are_refused(bad):
    with pytest.raises(GateError):
        parse_gate("quality_score", bad)


def test_gates_evaluate_at_their_bounds():
    metrics = {"diversity_score": 0.7, "quality_score": None}
    results = evaluate({"diversity_score": ">0.7", "quality_score": 0.1}, metrics)
    assert results["diversity_score"] == {"threshold": ">0.7", "value": 0.7, "passed": False}
    assert not results["quality_score"]["passed"]  # unmeasured fails
    assert evaluate({"diversity_score": ">=0.7"}, metrics)["diversity_score"]["passed"]
    assert evaluate({"diversity_score": "<0.2"}, {"diversity_score": 0.1})["diversity_score"][
        "passed"
    ]
    assert failures(results)[0] == "diversity_score 0.7 does not meet its gate >0.7"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DOCS, tmp_path / "docs")
    return tmp_path


def _create(project: Path, qc: str, out: str = "out/qa.jsonl"):
    (project / "config.yaml").write_text(cfg(qc))
    return CliRunner().invoke(
        lfm, ["dataset", "create", "--config", "config.yaml", "-o", out, "--workers", "1"]
    )


def test_create_fails_its_gates_after_writing_atomically(project):
    done = _create(project, seed_qc(diversity=">0.99"))
    assert done.exit_code == 1, done.output
    last = done.output.strip().splitlines()[-1]
    assert last.startswith("Error: the dataset was written but failed its gates: diversity_score ")
    assert "does not meet its gate >0.99" in last
    report = json.loads((project / "out" / "qa.report.json").read_text())
    assert report["gates"]["diversity_score"]["passed"] is False
    assert report["gates"]["quality_score"]["passed"] is True
    assert "coverage_analysis" in report["metrics"]
    assert (project / "out" / "qa.jsonl").read_text().strip()
    assert "gate diversity_score >0.99: FAILED" in (project / "out" / "qa.README.md").read_text()
    assert not [p for p in (project / "out").iterdir() if p.name.startswith(".")]  # no temp left


def test_create_passes_gates_and_coverage_can_be_left_out(project):
    done = _create(project, seed_qc(diversity=">0.1", coverage="false"))
    assert done.exit_code == 0, done.output
    report = json.loads((project / "out" / "qa.report.json").read_text())
    assert all(g["passed"] for g in report["gates"].values())
    assert "coverage_analysis" not in report["metrics"]
    assert report["settings"]["quality"]["language"] == "en"  # the nested filter took effect


def test_check_evaluates_gates_from_the_config(project):
    assert _create(project, seed_qc(diversity=">0.1")).exit_code == 0
    data = str(project / "out" / "qa.jsonl")
    passing = CliRunner().invoke(lfm, ["dataset", "check", data, "--config", "config.yaml"])
    assert passing.exit_code == 0, passing.output
    (project / "strict.yaml").write_text(cfg(seed_qc(diversity="<0.05")))
    failing = CliRunner().invoke(lfm, ["dataset", "check", data, "--config", "strict.yaml"])
    assert failing.exit_code == 1
    last = failing.output.strip().splitlines()[-1]
    assert last.startswith("Error: the dataset failed its gates: diversity_score ")
    assert last.endswith("does not meet its gate <0.05")
    report = CliRunner().invoke(
        lfm, ["dataset", "check", data, "--config", "config.yaml", "--report", "r.json"]
    )
    assert report.exit_code == 0
    coverage = json.loads(Path("r.json").read_text())["metrics"]["coverage_analysis"]
    assert coverage["documents_with_records"] >= 1


def test_a_bundle_stops_before_training_on_a_failed_gate(tmp_path):
    from lfm.dataset import DatasetError
    from lfm.dataset.bundle import build_for_training

    def build(gates: dict) -> tuple:
        return build_for_training(
            {"quality_control": {"gates": gates}},
            source=DOCS, fmt="alpaca", split_ratio=0.0, seed=1, tokenizer=None,
            cache_root=tmp_path / "cache",
        )  # fmt: skip

    train, _ = build({"quality_score": ">0.1"})
    assert train.exists()
    for _ in range(2):  # the second time from the cache: the gate still holds
        with pytest.raises(DatasetError, match=r"failed its gates: quality_score .* >0\.9999"):
            build({"quality_score": ">0.9999"})


def test_coherence_scores_on_topic_linked_answers_above_rambling_ones():
    from lfm.dataset.quality.heuristics import coherence

    question = "What is a LoRA adapter?"
    linked = coherence(
        question,
        "A LoRA adapter is a small set of low-rank matrices. It is trained instead of the full "
        "weights. The adapters are merged into the model later.",
    )
    rambling = coherence(
        question, "The weather is nice. Bananas grow on trees. The weather is nice."
    )
    assert linked == 1.0 and rambling < 0.4
    assert coherence("", "One sentence.") == 1.0  # nothing to judge


def test_min_coherence_filters_and_reports(tmp_path):
    from lfm.dataset.quality import QualitySettings, assess
    from lfm.dataset.quality.checks import Item
    from lfm.dataset.quality.toxicity import load_scorer

    def item(answer: str) -> Item:
        return Item([{"role": "user", "content": "What does the scheduler do?"},
                     {"role": "assistant", "content": answer}])  # fmt: skip

    settings = QualitySettings(min_coherence_score=0.5)
    good = item("The scheduler lowers the learning rate. It follows a cosine curve.")
    bad = item("Bananas are yellow. Trains run late. Bananas are yellow.")
    assert assess(good, settings, load_scorer(None)) is None
    assert assess(bad, settings, load_scorer(None)) == "incoherent"
    unscored = item("Bananas are yellow.")
    assert assess(unscored, QualitySettings(), load_scorer(None)) is None
    assert "coherence" not in unscored.scores  # scored only when asked


def test_check_reports_coherence_from_the_flag(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [
        {"instruction": "What does the scheduler do?", "input": "",
         "output": "The scheduler lowers the learning rate. It follows a cosine curve."},
        {"instruction": "What is a warmup?", "input": "",
         "output": "Bananas are yellow. Trains run late. Bananas are yellow."},
    ]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = CliRunner().invoke(
        lfm,
        [
            "dataset",
            "check",
            str(data),
            "--min-coherence",
            "0.5",
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["filters"]["incoherent"]["flagged"] == 1
    assert report["filters"]["incoherent"]["first_records"] == [1]
    assert report["metrics"]["coherence_score"] == 1.0  # of the record that passes
