"""A restarted train.py resumes only checkpoints of the config its bundle was compiled from."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lfm.runtime import resume, training
from lfm.runtime.errors import RuntimeConfigError

CONFIG: dict[str, Any] = {
    "name": "run",
    "version": "0.1.0",
    "base_model": "./model",
    "fine_tuning": {
        "method": "lora",
        "parameters": {"r": 8, "lora_alpha": 16},
        "training": {"learning_rate": 3e-3, "max_steps": 10, "save_steps": 5, "seed": 42},
    },
    "dataset": {"source": {"type": "local", "path": "./data.jsonl"}},
    "monitoring": {},
}


def _bundle(root: Path, **changes: Any) -> Path:
    """A bundle folder holding just a lock file, its config changed at dotted paths."""
    config = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    root.mkdir(parents=True, exist_ok=True)
    (root / "lfm.lock.json").write_text(json.dumps({"model_config": config}), encoding="utf-8")
    return root


def _checkpoint(output: Path, step: int) -> None:
    path = output / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text("{}", encoding="utf-8")


def test_a_fresh_run_records_what_it_trains(tmp_path: Path) -> None:
    bundle, output = _bundle(tmp_path / "bundle"), tmp_path / "bundle" / "output"
    assert training.resume_point(output, bundle) is None
    record = json.loads((output / resume.RUN_FILE).read_text(encoding="utf-8"))
    assert record["trains"]["fine_tuning"]["parameters"]["r"] == 8
    assert "max_steps" not in record["trains"]["fine_tuning"]["training"]  # may change
    _checkpoint(output, 5)
    assert training.resume_point(output, bundle) == str(output / "checkpoint-5")


def test_checkpoints_of_another_config_are_refused_with_what_changed(tmp_path: Path) -> None:
    output = tmp_path / "output"
    training.resume_point(output, _bundle(tmp_path / "old"))
    _checkpoint(output, 5)
    changed = _bundle(
        tmp_path / "new", fine_tuning__parameters__r=16, fine_tuning__training__learning_rate=1e-4
    )
    with pytest.raises(RuntimeConfigError) as error:
        training.resume_point(output, changed)
    assert str(error.value).startswith(
        f"{output} holds checkpoints of another config "
        "(model_config.fine_tuning.parameters.r: 8 -> 16; "
        "model_config.fine_tuning.training.learning_rate: 0.003 -> 0.0001), which this one "
        "cannot resume: move or delete that folder"
    )
    assert (output / "checkpoint-5").is_dir()  # nothing of the user's is touched


def test_a_longer_run_or_other_monitoring_still_resumes(tmp_path: Path) -> None:
    output = tmp_path / "output"
    training.resume_point(output, _bundle(tmp_path / "old"))
    _checkpoint(output, 10)
    longer = _bundle(
        tmp_path / "new",
        fine_tuning__training__max_steps=20,
        fine_tuning__training__save_steps=2,
        monitoring={"tensorboard": True},
        version="0.2.0",
    )
    assert training.resume_point(output, longer) == str(output / "checkpoint-10")


def test_runs_without_a_lock_or_a_record_are_not_checked(tmp_path: Path) -> None:
    output = tmp_path / "output"
    _checkpoint(output, 5)
    assert training.resume_point(output, tmp_path / "no-lock") == str(output / "checkpoint-5")
    # A run an older lfm started: taken as this config's, and recorded from now on.
    bundle = _bundle(tmp_path / "bundle")
    assert training.resume_point(output, bundle) == str(output / "checkpoint-5")
    assert (output / resume.RUN_FILE).is_file()


def test_settings_that_do_not_change_the_examples_or_steps_may_change(tmp_path: Path) -> None:
    """merge_on_save acts after training; quality control only filters documents."""
    output = tmp_path / "output"
    training.resume_point(output, _bundle(tmp_path / "old"))
    _checkpoint(output, 5)
    merged = _bundle(
        tmp_path / "merged",
        fine_tuning__parameters__merge_on_save=True,
        dataset__quality_control={"pii": "drop"},
    )
    assert training.resume_point(output, merged) == str(output / "checkpoint-5")
    resplit = _bundle(tmp_path / "resplit", dataset__validation={"split_ratio": 0.2})
    with pytest.raises(RuntimeConfigError, match=r"validation.split_ratio: null -> 0.2"):
        training.resume_point(output, resplit)


@pytest.mark.parametrize("damaged", ["{trunc", "{}", "[]"])
def test_a_damaged_record_is_rewritten_not_a_traceback(
    tmp_path: Path, damaged: str, capsys: pytest.CaptureFixture
) -> None:
    output, bundle = tmp_path / "output", _bundle(tmp_path / "bundle")
    _checkpoint(output, 5)
    (output / resume.RUN_FILE).write_text(damaged, encoding="utf-8")
    assert training.resume_point(output, bundle) == str(output / "checkpoint-5")
    assert "lfm-run.json is unreadable: resuming without checking it" in capsys.readouterr().err
    assert json.loads((output / resume.RUN_FILE).read_text(encoding="utf-8"))["trains"]
