"""What a bundle's sweep.py runs: the Optuna study, its storage, its workers, its progress.

The study lives in its storage, not in this process: every worker (this process, or the
children it starts with ``--workers``, other machines on a shared database) loads it by name
and runs trials until ``n_trials`` are finished or claimed there. A killed sweep is resumed by
running sweep.py again: the stored finished trials count. With SQLite or a database, a trial
that was running when its process died is marked failed once its heartbeat is stale and retried
once. Journal storage has no heartbeat: a killed trial there is retried only when sweep.py
itself (not a ``--worker``) starts again, which takes every trial still marked running for dead,
so start ``--worker`` processes on a journal study only while that sweep.py runs.

A stored study remembers which config made it (a fingerprint of the resolved config: all but
the sweep's run settings such as n_trials, timeout, parallelism, sampler): a study made for
another search space, objective, direction, data or model is not resumed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .endpoints import url_without_credentials
from .errors import RuntimeConfigError
from .launch import announce

STORAGE_ENV = "LFM_SWEEP_STORAGE"
# A running trial writes a heartbeat this often; one silent for the grace period is taken for
# dead (its process was killed), marked failed and retried.
HEARTBEAT_S = 10
GRACE_S = 30
SQLITE_TIMEOUT_S = 60  # how long a worker waits for another's write lock on the SQLite file
# A study whose first trials all crash has a broken setup, not unlucky values: stop there.
ALL_CRASHED = 3
# Workers starting together on a fresh database race to create its tables: retry, briefly.
OPEN_ATTEMPTS = 5
OPEN_BACKOFF_S = 0.5
FINGERPRINT_ATTR = "lfm_config_fingerprint"
ERROR_FILE = "error.txt"  # a crashed trial's traceback, in its folder
# What a finished trial that is not the best keeps: its record, metrics and evaluation.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "merged", "checkpoint-*")


@dataclass(frozen=True)
class StudySettings:
    study_name: str
    storage: str  # "sqlite", "journal" or a database URL
    direction: str
    objective: str
    n_trials: int
    timeout_s: float | None
    parallelism: int
    seed: int  # the sampler's; each worker and each resumed run offsets it (sampler_seed)
    fingerprint: str  # of the config that made the study; another config does not resume it


Objective = Callable[[Any], float]
SamplerFactory = Callable[[int, bool], Any]  # (seed, several workers share the study)
PrunerFactory = Callable[[], Any]


def load_script(path: Path, name: str) -> ModuleType:
    """Import a bundle script (train.py, evaluate.py) by its path, under a name of its own."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def evaluation_score(eval_dir: Path, name: str) -> float:
    """The fine-tuned model's ``name`` score from evaluate.py's eval_results.json."""
    results = json.loads((eval_dir / "eval_results.json").read_text(encoding="utf-8"))
    scores = results["evaluation_results"]["scores"]
    if name not in scores:
        raise RuntimeConfigError(f"evaluate.py measured no {name!r} (it has {', '.join(scores)})")
    return float(scores[name]["value"])


def storage_url(storage: str) -> str:
    """LFM_SWEEP_STORAGE, else the config's storage ("sqlite", "journal" or a URL)."""
    return os.environ.get(STORAGE_ENV) or storage


def shown(url: str) -> str:
    """A storage as printed: never its password."""
    return url_without_credentials(url)


def open_storage(storage: str, sweep_dir: Path) -> Any:
    """The study's storage: a SQLite or journal file in ``sweep_dir``, or a database URL."""
    import optuna

    storage = storage_url(storage)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if storage == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(sweep_dir / "study.journal")))
    url = f"sqlite:///{sweep_dir / 'study.db'}" if storage == "sqlite" else storage
    relative = url.startswith("sqlite:///") and not url.startswith("sqlite:////")
    if relative and storage != "sqlite":  # relative to wherever this run happens to start
        raise RuntimeConfigError(
            f"{STORAGE_ENV}={shown(url)} is a relative SQLite path: give an absolute one "
            "(sqlite:////path/to/study.db)"
        )
    return _retry(lambda: _rdb_storage(url), f"cannot open the study storage {shown(url)}")


def _rdb_storage(url: str) -> Any:
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        # Heartbeats are marked experimental, and have been stable since Optuna 2.8.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )


def _retry(open_it: Callable[[], Any], what: str) -> Any:
    """``open_it()``, tried again on a database's transient errors; one clear line when it
    cannot be done (no driver, a bad URL, a database that does not answer)."""
    from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError

    for attempt in range(OPEN_ATTEMPTS):
        try:
            return open_it()
        except (OperationalError, IntegrityError) as error:
            if attempt == OPEN_ATTEMPTS - 1:
                raise RuntimeConfigError(f"{what}: {_first_line(error)}") from None
            time.sleep(OPEN_BACKOFF_S * 2**attempt)
        except (ImportError, NoSuchModuleError) as error:
            raise RuntimeConfigError(
                f"{what}: its database driver is not installed ({_first_line(error)})"
            ) from None
        except (ArgumentError, ValueError) as error:
            raise RuntimeConfigError(f"{what}: {_first_line(error)}") from None
    raise AssertionError("unreachable")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return shown(text.splitlines()[0] if text else type(error).__name__)


def load_study(settings: StudySettings, storage: Any, pruner: Any, *, create: bool = True) -> Any:
    """The stored study (created when ``create`` and there is none), checked to have been made
    for this config. Its sampler is set apart: see use_sampler."""
    import optuna

    if create:
        study = _retry(
            lambda: optuna.create_study(
                study_name=settings.study_name,
                storage=storage,
                pruner=pruner,
                direction=settings.direction,
                load_if_exists=True,
            ),
            f"cannot open study {settings.study_name}",
        )
    else:
        try:
            study = optuna.load_study(
                study_name=settings.study_name, storage=storage, pruner=pruner
            )
        except KeyError:
            raise RuntimeConfigError(
                f"there is no study {settings.study_name!r} in its storage: run sweep.py first"
            ) from None
    _check_fingerprint(study, settings)
    return study


def _check_fingerprint(study: Any, settings: StudySettings) -> None:
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None and not study.get_trials(deepcopy=False):
        study.set_user_attr(FINGERPRINT_ATTR, settings.fingerprint)  # a new study
        return
    if stored != settings.fingerprint:
        raise RuntimeConfigError(
            f"the stored study {settings.study_name!r} was made for another config: delete "
            "output/sweep/study.db (or study.journal) or set sweep.study_name"
        )


def sampler_seed(seed: int, worker: int, stored: int) -> int:
    """``seed`` for the first worker of a new study; otherwise a seed of its own for each worker
    and each number of trials already stored, so neither a resumed run nor another worker draws
    the values drawn before."""
    if worker == 0 and stored == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{worker}:{stored}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def use_sampler(
    study: Any, settings: StudySettings, sampler: SamplerFactory, worker: int, parallel: bool
) -> None:
    stored = len(study.get_trials(deepcopy=False))
    study.sampler = sampler(sampler_seed(settings.seed, worker, stored), parallel)


def finished(study: Any) -> list[Any]:
    """Trials that count towards n_trials: completed, pruned, or crashed (not killed)."""
    from optuna.trial import TrialState

    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and "error" in t.user_attrs)
    ]


def more_to_run(study: Any, n_trials: int) -> bool:
    """Whether this worker should start a trial: one is queued (a retry), or fewer than
    n_trials are finished or running in some worker (so W workers do not run W - 1 trials
    past n_trials)."""
    from optuna.trial import TrialState

    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return True
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return len(finished(study)) + len(running) < n_trials


def fail_stale(study: Any) -> None:
    """Mark trials whose worker died (a stale heartbeat) failed, and queue their retry."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def retry_orphans(study: Any) -> int:
    """Journal storage has no heartbeat: when sweep.py itself starts, every trial still marked
    running was left by a killed run. Each is marked failed and its values queued again."""
    from optuna.trial import TrialState

    orphans = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in orphans:
        study._storage.set_trial_user_attr(trial._trial_id, "stale", True)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)
    return len(orphans)


def run_worker(
    settings: StudySettings,
    study: Any,
    objective: Objective,
    *,
    show: Callable[..., None],
    sweep_dir: Path,
) -> None:
    """Run trials one at a time until the study has n_trials finished or claimed (or the time
    is up)."""
    start = time.monotonic()
    crashed_in_a_row = 0
    keep_best = KeepBestWeights(sweep_dir)
    while True:
        fail_stale(study)
        if settings.timeout_s is not None and time.monotonic() - start > settings.timeout_s:
            announce(f"sweep.timeout_minutes reached: no new trial (study {settings.study_name})")
            return
        if not more_to_run(study, settings.n_trials):
            if not _wait_for_running(study, settings.n_trials):
                return
            continue
        before = len(study.get_trials(deepcopy=False))
        study.optimize(
            _guarded(objective, sweep_dir),
            n_trials=1,
            catch=(Exception,),
            callbacks=[show, keep_best],
            gc_after_trial=True,  # the trial's model and optimizer, before the next one loads
        )
        trial = study.get_trials(deepcopy=False)[before:]
        crashed = any("error" in t.user_attrs for t in trial)
        crashed_in_a_row = crashed_in_a_row + 1 if crashed else 0
        if crashed_in_a_row >= ALL_CRASHED and not _any_succeeded(study):
            error = [t for t in trial if "error" in t.user_attrs][-1].user_attrs["error"]
            raise RuntimeConfigError(f"the first {ALL_CRASHED} trials all failed: {error}")
        if _grid_exhausted(study):
            return


def _wait_for_running(study: Any, n_trials: int) -> bool:
    """Fewer than n_trials are finished, and the rest are running: wait a heartbeat for them
    to finish or (their process killed) to go stale and be queued again. Without heartbeats
    (journal storage) there is nothing to wait for: False."""
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running or len(finished(study)) >= n_trials or not is_heartbeat_enabled(study._storage):
        return False
    time.sleep(HEARTBEAT_S)
    return True


def trial_folder(sweep_dir: Path, number: int) -> Path:
    return sweep_dir / f"trial-{number:04d}"


def _guarded(objective: Objective, sweep_dir: Path) -> Objective:
    """A crashed trial is recorded (its error in the study, its traceback in its folder, one
    line here) and the study goes on."""
    import optuna

    def run(trial: Any) -> float:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            trial.set_user_attr("error", message[:2000])
            folder = trial_folder(sweep_dir, trial.number)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
            first = message.splitlines()[0][:300]
            announce(f"trial {trial.number} failed: {first} (traceback in {folder / ERROR_FILE})")
            raise

    return run


class KeepBestWeights:
    """An Optuna callback: after each trial, only the best trial so far keeps its weights
    (a sweep of large models would otherwise fill the disk); records and metrics stay."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = sweep_dir

    def __call__(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        try:
            best = study.best_trial.number
        except ValueError:  # nothing completed yet
            best = None
        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        for other in study.get_trials(deepcopy=False, states=done):
            if other.number != best:
                drop_weights(trial_folder(self.sweep_dir, other.number))


def drop_weights(folder: Path) -> None:
    for pattern in WEIGHT_PATTERNS:
        for path in folder.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _any_succeeded(study: Any) -> bool:
    from optuna.trial import TrialState

    return any(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        for t in study.get_trials(deepcopy=False)
    )


def _grid_exhausted(study: Any) -> bool:
    from optuna.samplers import GridSampler

    return isinstance(study.sampler, GridSampler) and study.sampler.is_exhausted(study)


def start_workers(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes of this sweep.py, worker indices 0..count-1 (their sampler seeds)
    and, where there are several GPUs, one GPU each. This process supervises and trains
    nothing, so no GPU is shared by two workers."""
    gpus = _gpu_count()
    procs = []
    for index in range(count):
        env = dict(os.environ)
        if gpus > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
        command = [sys.executable, sys.argv[0], "--worker", "--worker-index", str(index)]
        procs.append(subprocess.Popen(command, env=env))
    return procs


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_arguments(argv: list[str], parallelism: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run this bundle's hyperparameter sweep.")
    parser.add_argument("--workers", type=int, default=parallelism, help="processes here")
    parser.add_argument("--worker", action="store_true", help="be one worker only (no report)")
    parser.add_argument(
        "--worker-index",
        type=int,
        default=None,
        help="this worker's seed offset [default: JOB_COMPLETION_INDEX, else one from the "
        "host name and process id]",
    )
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.worker_index is None:
        args.worker_index = default_worker_index(args.worker)
    return args


def default_worker_index(worker: bool) -> int:
    """A pod of the indexed Job: its completion index. Another ``--worker`` (another machine):
    one from its host and process, never 0, which the first worker of a study has."""
    if "JOB_COMPLETION_INDEX" in os.environ:
        return int(os.environ["JOB_COMPLETION_INDEX"])
    if not worker:
        return 0
    digest = hashlib.sha256(f"{socket.gethostname()}:{os.getpid()}".encode()).digest()
    return 1 + int.from_bytes(digest[:4], "big") % (2**31 - 1)


def main(
    settings: StudySettings,
    objective: Objective,
    sampler: SamplerFactory,
    pruner: PrunerFactory,
    sweep_dir: Path,
    argv: list[str],
) -> None:
    """sweep.py's entry point: every mistake ends in one line and exit status 1."""
    import logging

    import optuna

    # One line per trial comes from TrialPrinter; Optuna's own INFO lines would repeat it, and
    # its failed-trial warning prints a traceback that _guarded has put in the trial's folder.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").setLevel(logging.ERROR)
    args = parse_arguments(argv, settings.parallelism)
    try:
        _run(settings, objective, sampler, pruner, sweep_dir, args)
    except RuntimeConfigError as error:
        raise SystemExit(f"error: {error}") from None
    except KeyboardInterrupt:
        raise SystemExit(
            "interrupted: run sweep.py again to resume the study where it stopped"
        ) from None


def _run(
    settings: StudySettings,
    objective: Objective,
    sampler: SamplerFactory,
    pruner: PrunerFactory,
    sweep_dir: Path,
    args: argparse.Namespace,
) -> None:
    from .sweep_report import TrialPrinter, write_report

    url = storage_url(settings.storage)
    embedded = {"sqlite": "study.db", "journal": "study.journal"}.get(url)
    if args.report and embedded and not (sweep_dir / embedded).exists():
        raise RuntimeConfigError(f"there is no study in {sweep_dir}: run sweep.py first")
    # Created here, once, before any worker starts: workers then only load it.
    storage = open_storage(settings.storage, sweep_dir)
    study = load_study(settings, storage, pruner(), create=not args.report)
    if not args.report:
        if url == "journal" and not args.worker and (count := retry_orphans(study)):
            announce(f"{count} trial(s) left running by a killed run: queued again")
        done = len(finished(study))
        if done and not args.worker:
            announce(f"resuming study {settings.study_name}: {done} of "
                     f"{settings.n_trials} trials already finished")  # fmt: skip
        if args.workers > 1 and not args.worker:
            _supervise(start_workers(args.workers))
        else:
            shared = args.worker or url not in ("sqlite", "journal")
            use_sampler(study, settings, sampler, args.worker_index, parallel=shared)
            printer = TrialPrinter(settings)
            run_worker(settings, study, objective, show=printer, sweep_dir=sweep_dir)
    if not args.worker:
        report = write_report(study, settings, sweep_dir)
        announce(f"report: {report}")


def _supervise(workers: list[subprocess.Popen[bytes]]) -> None:
    """Wait for every worker; Ctrl-C reaches them too, and each records its trial first."""
    try:
        failed = [w.wait() for w in workers]
    except KeyboardInterrupt:
        for w in workers:
            w.wait()
        raise
    if any(failed):
        announce(f"{sum(map(bool, failed))} worker process(es) exited with an error")
