"""Sweeps run for real on the tiny model: better values found, trials pruned, a killed sweep
resumed, two workers on one SQLite study.

examples/sweep.yaml starts from a learning rate of 1e-5, far too low for the tiny model in 18
steps: the study must find a better one than the config's own run does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    examples = root / "examples"
    examples.mkdir()
    shutil.copytree(REPO / "examples" / "data", examples / "data")
    shutil.copy(REPO / "examples" / "sweep.yaml", examples / "sweep.yaml")
    run(sys.executable, "-m", "lfm.cli", "dev", "tiny-model", "examples/tiny-model", cwd=root)
    return root


def variant(project: Path, name: str, n_trials: int, max_steps: int = -1) -> Path:
    """examples/sweep.yaml under another name (its own bundle and study), n_trials changed
    (and max_steps, for a run of a few steps)."""
    text = (project / "examples" / "sweep.yaml").read_text(encoding="utf-8")
    text = text.replace("name: sweep\n", f"name: {name}\n").replace(
        "n_trials: 8", f"n_trials: {n_trials}"
    )
    if max_steps > 0:
        text = text.replace("      epochs: 3\n", f"      epochs: 3\n      max_steps: {max_steps}\n")
    path = project / "examples" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def trials_in(bundle: Path) -> list[tuple[int, str]]:
    """(number, state) of every trial in the bundle's SQLite study."""
    with sqlite3.connect(bundle / "output" / "sweep" / "study.db") as db:
        return db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def test_a_short_sweep_runs_end_to_end(project: Path) -> None:
    """The default run's sweep: two trials of three steps, through `lfm sweep`."""
    config = variant(project, "short", 2, max_steps=3)
    start = time.monotonic()
    done = run(sys.executable, "-m", "lfm.cli", "sweep", str(config), cwd=project)
    elapsed = time.monotonic() - start
    sweep_dir = project / "build" / "short" / "output" / "sweep"
    report = json.loads((sweep_dir / "report.json").read_text())
    states = [t["state"] for t in report["trials"]]
    assert len(states) == 2 and states[0] == "complete" and set(states) <= {"complete", "pruned"}
    assert report["trials"][0]["values"] != report["trials"][1]["values"]
    best = report["best"]["number"]
    weights = sorted(p.parent.name for p in sweep_dir.glob("trial-*/adapter_model.safetensors"))
    assert weights == [f"trial-{best:04d}"]  # only the best trial keeps its weights
    assert not list(sweep_dir.glob("trial-*/merged"))
    written = (project / "examples" / "short.best.yaml").read_text()
    assert f"Its trained model: ../build/short/output/sweep/trial-{best:04d}" in written
    assert str(project) not in written  # no machine path in the header
    # Run again: the best config exists, so it is not replaced without --force.
    again = run(sys.executable, "-m", "lfm.cli", "sweep", str(config), cwd=project, check=False)
    assert again.returncode == 1 and "pass --force" in again.stderr, again.stderr[-2000:]
    assert "best trial" in done.stdout
    # Once more, registering the winner: the finished study is not run again.
    registry = project / "registry"
    args = ("sweep", str(config), "--force", "--register", "--registry", str(registry))
    registered = run(sys.executable, "-m", "lfm.cli", *args, cwd=project)
    assert "registered the best trial as short:0.1.0" in registered.stdout, registered.stdout
    from lfm.registry import open_registry

    store = open_registry(str(registry))
    try:
        [record] = store.list_versions("short")
    finally:
        store.close()
    assert record.type == "adapter" and record.tags["sweep.trial"] == str(best)
    winner = report["best"]["values"]["fine_tuning.training.learning_rate"]
    assert record.tags["sweep.fine_tuning.training.learning_rate"] == str(winner)
    assert record.lineage["base_model"].endswith("tiny-model")
    print(f"2 short trials in {elapsed:.0f} s")


def test_a_dpo_sweep_searches_beta_by_held_out_preference_accuracy(project: Path) -> None:
    """A preference objective's own setting swept: each trial's DPOConfig gets its beta, and
    evaluate.py scores each trial's held-out pairs (preference_accuracy, maximized)."""
    text = (REPO / "examples" / "dpo.yaml").read_text(encoding="utf-8")
    text = text.replace("name: dpo\n", "name: dpo-sweep\n")
    text = text.replace("      epochs: 3\n", "      epochs: 3\n      max_steps: 2\n")
    text += (
        "  evaluation: {}\n"
        "  sweep:\n"
        "    parameters:\n"
        "      beta: {type: categorical, choices: [0.05, 0.5]}\n"
        "    sampler: grid\n"
        "    objective: preference_accuracy\n"
        "    n_trials: 2\n"
    )
    config = project / "examples" / "dpo-sweep.yaml"
    config.write_text(text, encoding="utf-8")
    run(sys.executable, "-m", "lfm.cli", "sweep", str(config), cwd=project)
    sweep_dir = project / "build" / "dpo-sweep" / "output" / "sweep"
    report = json.loads((sweep_dir / "report.json").read_text())
    assert report["objective"] == "preference_accuracy" and report["direction"] == "maximize"
    assert [t["state"] for t in report["trials"]] == ["complete", "complete"]
    betas = sorted(t["values"]["fine_tuning.preference.beta"] for t in report["trials"])
    assert betas == [0.05, 0.5]
    for trial in report["trials"]:
        folder = sweep_dir / f"trial-{trial['number']:04d}"
        scored = json.loads((folder / "eval" / "eval_results.json").read_text())
        accuracy = scored["evaluation_results"]["scores"]["preference_accuracy"]["value"]
        assert trial["value"] == pytest.approx(accuracy)
    # The trial's beta reached TRL's DPOConfig (saved with the best trial's adapter).
    best = report["best"]["number"]
    args = torch_load_args(sweep_dir / f"trial-{best:04d}" / "training_args.bin")
    assert args.beta == report["best"]["values"]["fine_tuning.preference.beta"]


def torch_load_args(path: Path):
    import torch

    return torch.load(path, weights_only=False)


@pytest.mark.slow  # nine CPU trainings: minutes on a two-core machine
def test_eight_trials_beat_the_config_and_prune(project: Path) -> None:
    start = time.monotonic()
    done = run(sys.executable, "-m", "lfm.cli", "sweep", "examples/sweep.yaml", cwd=project)
    elapsed = time.monotonic() - start
    bundle = project / "build" / "sweep"
    report = json.loads((bundle / "output" / "sweep" / "report.json").read_text())
    states = [t["state"] for t in report["trials"]]
    assert len(states) == 8 and set(states) <= {"complete", "pruned"}, report["states"]
    assert "pruned" in states, "the median pruner stopped no trial"
    pruned = [t for t in report["trials"] if t["state"] == "pruned"]
    full = max(t["evaluations"] for t in report["trials"] if t["state"] == "complete")
    assert all(t["evaluations"] < full for t in pruned), report["trials"]  # stopped early
    best = report["best"]
    # The config's own values, trained by the same bundle's train.py as written.
    run(sys.executable, str(bundle / "train.py"), cwd=project)
    as_written = json.loads((bundle / "output" / "metrics.json").read_text())["eval"][-1]
    assert best["value"] < as_written["eval_loss"] - 0.1, (best, as_written)
    assert best["values"]["fine_tuning.training.learning_rate"] > 1e-5
    # The best config: the original file with the best values, and no sweep.
    written = (project / "examples" / "sweep.best.yaml").read_text()
    assert f"learning_rate: {best['values']['fine_tuning.training.learning_rate']}" in written
    assert "\n  sweep:" not in written and "base_model: ./tiny-model" in written
    assert "best trial" in done.stdout
    assert report["plots"], "no plot was written"
    print(f"8 trials in {elapsed:.0f} s: {best}")


@pytest.mark.slow  # two sweep processes: about a minute
def test_a_killed_sweep_resumes_without_repeating_finished_trials(project: Path) -> None:
    config = variant(project, "resumed", 6)
    bundle = project / "build" / "resumed"
    run(sys.executable, "-m", "lfm.cli", "compile", str(config), "-o", str(bundle), cwd=project)
    log = project / "resumed.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(bundle / "sweep.py")], cwd=project, env=ENV, stderr=out
        )
        deadline = time.monotonic() + 300
        while log.read_text().count("/6); best") < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {n: s for n, s in trials_in(bundle) if s in ("COMPLETE", "PRUNED")}
    assert 2 <= len(before) < 6
    again = run(sys.executable, str(bundle / "sweep.py"), cwd=project)
    assert f"{len(before)} of 6 trials already finished" in again.stderr
    after = dict(trials_in(bundle))
    assert all(after[n] == s for n, s in before.items())  # kept as they were
    finished = [n for n, s in after.items() if s in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6
    # The second run started only the trials that were missing, with values not drawn before.
    started = [line for line in again.stderr.splitlines() if line.startswith("[lfm] trial ")]
    numbers = {int(line.split()[2].rstrip(":")) for line in started if ": learning_rate=" in line}
    assert numbers and not numbers & set(before), again.stderr[-3000:]
    report = json.loads((bundle / "output" / "sweep" / "report.json").read_text())
    # The killed trial (failed) is retried with its own values; no other values repeat.
    drawn = [tuple(sorted(t["values"].items())) for t in report["trials"] if t["state"] != "fail"]
    assert len(drawn) == len(set(drawn)) == 6, report["trials"]


@pytest.mark.slow  # two workers at once, then the report: about a minute
def test_two_workers_share_one_sqlite_study(project: Path) -> None:
    config = variant(project, "shared", 6)
    bundle = project / "build" / "shared"
    run(sys.executable, "-m", "lfm.cli", "compile", str(config), "-o", str(bundle), cwd=project)
    sweep = str(bundle / "sweep.py")
    workers = [
        subprocess.Popen(
            [sys.executable, sweep, "--worker", "--worker-index", str(i)],
            cwd=project,
            env=ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    outputs = [w.communicate(timeout=600)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    ran = [
        {
            int(line.split()[2].rstrip(":"))
            for line in out.splitlines()
            if ": learning_rate=" in line
        }
        for out in outputs
    ]
    assert ran[0] and ran[1], "one worker ran no trial"
    assert not ran[0] & ran[1]
    stored = trials_in(bundle)
    assert {n for n, _ in stored} == ran[0] | ran[1]  # no trial lost, none run twice
    assert all(state in ("COMPLETE", "PRUNED") for _, state in stored)
    # Each worker stops once 6 have finished; both may be inside a trial at that moment.
    assert 6 <= len(stored) <= 7
    run(sys.executable, sweep, "--report", cwd=project)
    report = json.loads((bundle / "output" / "sweep" / "report.json").read_text())
    assert len(report["trials"]) == len(stored)
