"""The study loop of lfm.runtime.sweeps, on objectives that need no model (fast, in-process)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from lfm.runtime import sweeps  # noqa: E402
from lfm.runtime.errors import RuntimeConfigError  # noqa: E402
from lfm.runtime.sweep_report import build_report  # noqa: E402


def settings(
    n_trials: int, storage: str = "sqlite", fingerprint: str = "f1"
) -> sweeps.StudySettings:
    return sweeps.StudySettings(
        "s", storage, "minimize", "eval_loss", n_trials, None, 1, 0, fingerprint
    )


def random_sampler(seed: int, parallel: bool):
    return optuna.samplers.RandomSampler(seed=seed)


def study_in(tmp_path: Path, n_trials: int, storage: str = "sqlite", fingerprint: str = "f1"):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = sweeps.open_storage(storage, tmp_path)
    chosen = settings(n_trials, storage, fingerprint)
    study = sweeps.load_study(chosen, opened, optuna.pruners.NopPruner())
    sweeps.use_sampler(study, chosen, random_sampler, worker=0, parallel=False)
    return study


def quiet(study, trial) -> None:
    return None


def test_a_crashed_trial_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    study = study_in(tmp_path, 4)

    def objective(trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        if trial.number == 1:
            raise ValueError("out of memory (pretend)")
        return x * x

    sweeps.run_worker(settings(4), study, objective, show=quiet, sweep_dir=tmp_path)
    report = build_report(study, settings(4), tmp_path)
    assert report["states"] == {"complete": 3, "fail": 1}
    crashed = report["trials"][1]
    assert crashed["state"] == "fail" and "out of memory" in crashed["error"]
    traceback = (tmp_path / "trial-0001" / sweeps.ERROR_FILE).read_text(encoding="utf-8")
    assert "Traceback" in traceback and "out of memory (pretend)" in traceback
    assert report["best"]["number"] != 1


def test_a_study_whose_first_trials_all_crash_stops_with_the_error(tmp_path: Path) -> None:
    study = study_in(tmp_path, 10)

    def objective(trial) -> float:
        raise KeyError("no such column")

    with pytest.raises(RuntimeConfigError, match="first 3 trials all failed.*no such column"):
        sweeps.run_worker(settings(10), study, objective, show=quiet, sweep_dir=tmp_path)


def test_a_reopened_study_counts_what_it_finished(tmp_path: Path) -> None:
    ran = []

    def objective(trial) -> float:
        ran.append(trial.number)
        return trial.suggest_float("x", 0, 1)

    sweeps.run_worker(settings(3), study_in(tmp_path, 3), objective, show=quiet, sweep_dir=tmp_path)
    sweeps.run_worker(settings(5), study_in(tmp_path, 5), objective, show=quiet, sweep_dir=tmp_path)
    assert ran == [0, 1, 2, 3, 4]  # the second run added only the two missing trials


def test_journal_storage_is_a_file_in_the_sweep_folder(tmp_path: Path) -> None:
    study = study_in(tmp_path, 2, storage="journal")
    sweeps.run_worker(
        settings(2, "journal"),
        study,
        lambda t: t.suggest_int("n", 0, 3),
        show=quiet,
        sweep_dir=tmp_path,
    )
    assert (tmp_path / "study.journal").is_file()
    assert len(sweeps.finished(study)) == 2


def test_the_environment_names_a_shared_storage(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv(sweeps.STORAGE_ENV, url)
    sweeps.open_storage("sqlite", tmp_path / "sweep")
    assert (tmp_path / "shared.db").exists()


def test_a_study_made_for_another_config_is_not_resumed(tmp_path: Path) -> None:
    study = study_in(tmp_path, 2)
    sweeps.run_worker(settings(2), study, lambda t: t.suggest_float("x", 0, 1), show=quiet,
                      sweep_dir=tmp_path)  # fmt: skip
    study_in(tmp_path, 5)  # the same config, more trials: resumed
    with pytest.raises(RuntimeConfigError, match="made for another config: delete"):
        study_in(tmp_path, 5, fingerprint="changed")


def test_a_resumed_study_does_not_redraw_the_first_values(tmp_path: Path) -> None:
    def objective(trial) -> float:
        return trial.suggest_float("x", 0, 1)

    sweeps.run_worker(settings(1), study_in(tmp_path, 1), objective, show=quiet,
                      sweep_dir=tmp_path)  # fmt: skip
    study = study_in(tmp_path, 3)
    sweeps.run_worker(settings(3), study, objective, show=quiet, sweep_dir=tmp_path)
    drawn = [t.params["x"] for t in study.get_trials()]
    assert len(drawn) == 3 and len(set(drawn)) == 3, drawn


def test_workers_have_seeds_of_their_own() -> None:
    seeds = {sweeps.sampler_seed(42, w, n) for w in (0, 1, 2) for n in (0, 1, 5)}
    assert len(seeds) == 9 and sweeps.sampler_seed(42, 0, 0) == 42
    assert sweeps.default_worker_index(worker=True) != 0


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_running_trials_count_as_claimed(tmp_path: Path, monkeypatch) -> None:
    study = study_in(tmp_path, 2)
    monkeypatch.setattr(sweeps, "HEARTBEAT_S", 0.05)
    other = study.ask()  # another worker's trial, still running: it ends a moment later
    timer = threading.Timer(0.5, lambda: study.tell(other, 1.0))
    timer.start()
    ran = []
    sweeps.run_worker(settings(2), study, lambda t: ran.append(t) or 0.0, show=quiet,
                      sweep_dir=tmp_path)  # fmt: skip
    timer.join()
    assert len(ran) == 1  # not two: the running trial is one of the n_trials
    assert len(sweeps.finished(study)) == 2  # and the worker waited for it to finish


def test_journal_trials_left_running_are_queued_again(tmp_path: Path) -> None:
    study = study_in(tmp_path, 2, storage="journal")
    left = study.ask()  # a run killed in this trial
    left.suggest_float("x", 0, 1)
    assert sweeps.retry_orphans(study) == 1
    seen = []

    def objective(trial) -> float:
        seen.append(trial.suggest_float("x", 0, 1))
        return 0.0

    sweeps.run_worker(settings(1, "journal"), study, objective, show=quiet, sweep_dir=tmp_path)
    assert seen == [left.params["x"]]


def test_only_the_best_trial_keeps_its_weights(tmp_path: Path) -> None:
    study = study_in(tmp_path, 3)

    def objective(trial) -> float:
        folder = sweeps.trial_folder(tmp_path, trial.number)
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(b"w")
        (folder / "metrics.json").write_text("{}")
        return [0.5, 0.1, 0.9][trial.number]

    sweeps.run_worker(settings(3), study, objective, show=quiet, sweep_dir=tmp_path)
    kept = sorted(p.parent.name for p in tmp_path.glob("trial-*/adapter_model.safetensors"))
    assert kept == ["trial-0001"]
    assert len(list(tmp_path.glob("trial-*/metrics.json"))) == 3


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://optuna:hunter2@127.0.0.1:1/optuna", "cannot open the study storage"),
        ("mysql+nosuchdriver://db/optuna", "cannot open the study storage"),
        ("sqlite:///relative.db", "relative SQLite path"),
    ],
)
def test_storage_failures_are_one_line(tmp_path: Path, monkeypatch, url: str, words: str) -> None:
    monkeypatch.setattr(sweeps, "OPEN_ATTEMPTS", 1)
    monkeypatch.setenv(sweeps.STORAGE_ENV, url)
    with pytest.raises(RuntimeConfigError, match=words) as caught:
        sweeps.open_storage("sqlite", tmp_path)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_report_of_no_study_creates_none(tmp_path: Path) -> None:
    def nothing(trial) -> float:
        raise AssertionError("no trial runs for --report")

    with pytest.raises(SystemExit, match="there is no study"):
        sweeps.main(settings(2), nothing, random_sampler, optuna.pruners.NopPruner, tmp_path,
                    ["--report"])  # fmt: skip
    assert not (tmp_path / "study.db").exists()
