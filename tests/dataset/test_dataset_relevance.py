"""Domain relevance: each record scored against the source documents' passages, reported as a
metric, usable as a filter (`off_domain`) and as a gate, in `dataset create` and `check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.dataset.chunking import ChunkSettings, count_words
from lfm.dataset.create import create
from lfm.dataset.options import CreateOptions
from lfm.dataset.quality import QualitySettings
from lfm.dataset.quality.checks import Item
from lfm.dataset.quality.relevance import RelevanceIndex, index_documents, record_text

DOCS = Path(__file__).resolve().parent / "docs"
OFF_DOMAIN = {
    "instruction": "How long should sourdough bread rise before baking?",
    "input": "",
    "output": "Let the dough rise overnight in a warm kitchen, then bake it in a hot oven until "
    "the crust is brown.",
}
ON_DOMAIN = {
    "instruction": "How often does a probe report soil moisture?",
    "input": "",
    "output": "Each probe measures soil moisture and reports it to the base station.",
}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def index() -> RelevanceIndex:
    return index_documents([str(DOCS)], ChunkSettings(), count_words)


def test_on_domain_records_score_above_off_domain_ones(index):
    on, off = index.scores(
        [ON_DOMAIN["instruction"] + " " + ON_DOMAIN["output"],
         OFF_DOMAIN["instruction"] + " " + OFF_DOMAIN["output"]]
    )  # fmt: skip
    assert on > 0.3 and off < 0.05
    # A passage of the collection is its own nearest passage.
    manual = (DOCS / "guide.md").read_text().split("\n\n")[1]
    assert index.scores([manual])[0] > on
    assert RelevanceIndex().scores(["anything"]) == [0.0]  # no documents: nothing is relevant


def test_an_included_context_does_not_count():
    chunk = "The tensiometer reads soil water tension in centibars."
    item = Item(
        [{"role": "user", "content": f"What is sourdough?\n\n{chunk}"},
         {"role": "assistant", "content": "A bread."}],
        context=chunk,
    )  # fmt: skip
    assert "tensiometer" not in record_text(item) and "sourdough" in record_text(item)


def test_gated_or_filtered_relevance_is_scored():
    assert not QualitySettings().scores_relevance
    assert QualitySettings(domain_relevance=True).scores_relevance
    assert QualitySettings(min_domain_relevance=0.2).scores_relevance
    assert QualitySettings(gates=(("domain_relevance", ">0.3"),)).scores_relevance


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("rel") / "qa.jsonl"
    settings = QualitySettings(domain_relevance=True)
    report = create(CreateOptions(sources=(str(DOCS),), quality=settings, workers=1), out)
    return out, report


def _check(data: Path, *args: str) -> tuple[int, dict, str]:
    report = data.with_name(f"{data.stem}.check.json")
    done = CliRunner().invoke(lfm, ["dataset", "check", str(data), "--report", str(report), *args])
    return done.exit_code, json.loads(report.read_text()) if report.exists() else {}, done.output


def test_create_reports_what_check_measures(scored):
    data, report = scored
    relevance = report["metrics"]["domain_relevance"]
    assert 0.3 < relevance < 1
    code, checked, _ = _check(data, "--source", str(DOCS))
    assert code == 0 and checked["metrics"]["domain_relevance"] == relevance
    assert "domain_relevance: " in data.with_name("qa.README.md").read_text()


def test_create_filters_below_min_domain_relevance(scored, tmp_path):
    data, _ = scored
    index = index_documents([str(DOCS)], ChunkSettings(), count_words)
    scores = sorted(index.scores([r["instruction"] + "\n" + r["output"] for r in _lines(data)]))
    threshold = scores[len(scores) // 3]  # about a third falls below
    below = sum(s < threshold for s in scores)
    out = tmp_path / "filtered.jsonl"
    settings = QualitySettings(min_domain_relevance=threshold)
    report = create(CreateOptions(sources=(str(DOCS),), quality=settings, workers=1), out)
    assert report["filters"]["off_domain"]["removed"] == below > 0
    assert len(_lines(out)) == len(scores) - below
    assert report["metrics"]["domain_relevance"] >= threshold


def test_check_flags_an_off_domain_record(scored, tmp_path):
    data, _ = scored
    records = _lines(data)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in [*records, OFF_DOMAIN, ON_DOMAIN]))
    code, report, output = _check(mixed, "--source", str(DOCS), "--min-relevance", "0.1")
    assert code == 0, output
    assert report["filters"]["off_domain"]["flagged"] == 1
    assert report["filters"]["off_domain"]["first_records"] == [len(records)]


def test_check_without_documents_is_a_clear_error(scored):
    data, _ = scored
    done = CliRunner().invoke(lfm, ["dataset", "check", str(data), "--min-relevance", "0.2"])
    assert done.exit_code == 1 and "give --source DOCS" in done.output
    assert "Traceback" not in done.output


def _config(project: Path, gate: str) -> Path:
    config = project / f"cfg{len(list(project.glob('cfg*')))}.yaml"
    config.write_text(
        "model_config:\n  base_model: ./no-model\n  dataset:\n"
        "    source: {type: documents, path: ./docs/}\n"
        "    quality_control:\n"
        "      validation: {domain_relevance: true}\n"
        f"      metrics: {{domain_relevance: '{gate}'}}\n"
    )
    return config


def test_the_seed_block_gates_on_domain_relevance(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs")
    passing = _config(tmp_path, ">0.2")
    out = tmp_path / "out" / "qa.jsonl"
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--config", str(passing), "-o", str(out), "--workers", "1"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(out.with_name("qa.report.json").read_text())
    assert report["gates"]["domain_relevance"]["passed"] is True
    failing = _config(tmp_path, ">0.99")
    done = CliRunner().invoke(
        lfm, ["dataset", "create", "--config", str(failing), "-o", str(out), "--force"]
    )
    assert done.exit_code == 1
    assert "domain_relevance " in done.output and "does not meet its gate >0.99" in done.output
    # check takes the documents from the config's source
    checked = CliRunner().invoke(lfm, ["dataset", "check", str(out), "--config", str(failing)])
    assert checked.exit_code == 1 and "does not meet its gate >0.99" in checked.output
