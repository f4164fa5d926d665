"""lm-evaluation-harness on a tiny local task shipped in tests/ (nothing is downloaded)."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("peft")

from conftest import TASKS_DIR  # noqa: E402
from lfm.runtime.errors import RuntimeConfigError  # noqa: E402
from lfm.runtime.evaluation import benchmarks, model_eval  # noqa: E402


def test_a_local_lm_eval_task_runs_end_to_end(eval_tiny_model, tmp_path, monkeypatch):
    # From another directory: the task's data file is found relative to its YAML.
    monkeypatch.chdir(tmp_path)
    loaded = model_eval.load_for_eval(str(eval_tiny_model))
    scores = benchmarks.run_benchmarks(
        loaded, ["lfm_tiny_choice"], tasks_dir=str(TASKS_DIR), batch_size=4
    )
    result = scores["lfm_tiny_choice"]
    # Six questions: accuracy is a whole number of sixths, and it is lm-eval's `acc`.
    assert result["accuracy"] == result["acc"]
    assert round(result["accuracy"] * 6, 6) == int(round(result["accuracy"] * 6))


def test_a_task_yaml_path_works_as_a_benchmark_name(eval_tiny_model, tmp_path):
    copy = tmp_path / "tasks"
    shutil.copytree(TASKS_DIR, copy)
    _, specs = benchmarks.task_specs(["tasks/lfm_tiny_choice.yaml"], base_dir=tmp_path)
    assert specs[0]["dataset_kwargs"]["data_files"]["test"] == str(copy / "lfm_tiny_choice.jsonl")


def test_a_missing_benchmark_dataset_names_what_to_provide():
    with pytest.raises(RuntimeConfigError) as error:
        benchmarks.task_specs(["lfm_tiny_missing"], tasks_dir=str(TASKS_DIR))
    message = str(error.value)
    assert "evaluation.benchmarks 'lfm_tiny_missing': its data files " in message
    assert str(TASKS_DIR / "not_here.jsonl") in message
    assert "dataset_kwargs.data_files" in message and "\n" not in message


def test_an_unknown_benchmark_suggests_the_closest_name():
    with pytest.raises(RuntimeConfigError, match="did you mean 'lfm_tiny_choice'"):
        benchmarks.task_specs(["lfm_tiny_choise"], tasks_dir=str(TASKS_DIR))
