"""Code a config names (a toxicity scorer, an lm-eval task folder with !function) runs only with
the user's say-so from outside the config: LFM_TRUST_CODE or --trust-code."""

from __future__ import annotations

from pathlib import Path

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze
from lfm.runtime.errors import RuntimeConfigError

CONFIG = """\
model_config:
  name: scored
  base_model: ./model
  dataset:
    source: {{type: documents, path: ./docs}}
    quality_control: {{toxicity_filter: true, toxicity_scorer: "{scorer}"}}
"""


def test_a_standard_library_scorer_is_a_compile_error(write_config):
    with pytest.raises(CompileError, match="standard library") as raised:
        analyze(write_config(CONFIG.format(scorer="os:system")))
    assert raised.value.diagnostics[0].location is not None  # file:line:col of the setting


def test_a_scorer_module_compiles_with_a_warning_naming_the_opt_in(write_config):
    analysis = analyze(write_config(CONFIG.format(scorer="my_filters.tox:score")))
    warned = [d for d in analysis.diagnostics if "toxicity_scorer" in d.message]
    assert warned and "LFM_TRUST_CODE=my_filters.tox" in (warned[0].hint or "")


def test_an_lm_eval_task_folder_that_runs_code_needs_the_users_flag(tmp_path, monkeypatch):
    from lfm.runtime.evaluation.benchmarks import _tasks_dir

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "plain.yaml").write_text("task: plain\n")
    monkeypatch.delenv("LFM_TRUST_CODE", raising=False)
    assert _tasks_dir(str(tasks), None) == tasks  # no !function: nothing to allow
    (tasks / "custom.yaml").write_text("task: custom\nprocess_results: !function utils.score\n")
    with pytest.raises(RuntimeConfigError, match="!function.*--trust-code"):
        _tasks_dir(str(tasks), None)
    monkeypatch.setenv("LFM_TRUST_CODE", str(tasks))
    assert _tasks_dir(str(tasks), None) == tasks


def test_trust_code_on_the_command_line_reaches_the_run(tmp_path, monkeypatch):
    """`lfm dataset create --trust-code M` lets the scorer the config names be imported."""
    from click.testing import CliRunner
    from lfm.cli import lfm

    monkeypatch.delenv("LFM_TRUST_CODE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Probes\n\nThe probe reads soil moisture hourly.\n")
    (tmp_path / "lfm_test_scorer.py").write_text("def score(text):\n    return 0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    Path("c.yaml").write_text(CONFIG.format(scorer="lfm_test_scorer:score"))
    args = ["dataset", "create", "--config", "c.yaml", "-o", "out.jsonl", "--workers", "1"]
    refused = CliRunner().invoke(lfm, args)
    assert refused.exit_code == 1 and "--trust-code lfm_test_scorer" in refused.output
    allowed = CliRunner().invoke(lfm, [*args, "--trust-code", "lfm_test_scorer"])
    assert "names code to import" not in allowed.output, allowed.output


@pytest.mark.parametrize(
    ("files", "task"),
    [
        # An escaped spelling of the tag is still the tag.
        ({"t.yaml": "task: t\nprocess_results: !functio%6E utils.score\n"}, "t.yaml"),
        (
            {"t.yaml": "%TAG !f! !functio\n---\ntask: t\nprocess_results: !f!n utils.score\n"},
            "t.yaml",
        ),
        # A file with no tag that includes one from another folder runs that folder's code.
        (
            {
                "t.yaml": "include: ../elsewhere/base.yaml\ntask: t\n",
                "../elsewhere/base.yaml": "process_results: !function utils.score\n",
            },
            "t.yaml",
        ),
    ],
)
def test_a_task_file_that_runs_code_however_spelled_needs_the_users_flag(
    files, task, tmp_path, monkeypatch
):
    from lfm.runtime.evaluation.benchmarks import _task_runs_code, _tasks_dir

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for name, text in files.items():
        (tasks / name).parent.mkdir(parents=True, exist_ok=True)
        (tasks / name).write_text(text)
    monkeypatch.delenv("LFM_TRUST_CODE", raising=False)
    assert _task_runs_code(tasks / task)
    with pytest.raises(RuntimeConfigError, match="--trust-code"):
        _tasks_dir(str(tasks), None)


def test_a_plain_task_file_needs_nothing(tmp_path):
    from lfm.runtime.evaluation.benchmarks import _task_runs_code

    (tmp_path / "base.yaml").write_text("dataset_path: json\n")
    (tmp_path / "t.yaml").write_text("include: base.yaml\ntask: t\nmetric_list: [{metric: acc}]\n")
    assert not _task_runs_code(tmp_path / "t.yaml")
