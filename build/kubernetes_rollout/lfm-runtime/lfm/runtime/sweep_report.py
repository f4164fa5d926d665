"""A sweep's progress lines and its report: report.json and Optuna's plots.

report.json has every trial (state, value, values tried, time, the error of a crashed one) and
the best trial's values by config path, which `lfm sweep` writes into the best config. The plots
are Optuna's own (optimization history, parameter importances): HTML through plotly when it is
installed, else PNG through matplotlib, else none (the report says which).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from .launch import announce

REPORT_FILE = "report.json"


class TrialPrinter:
    """An Optuna callback: one line per finished trial, with the best so far."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def __call__(self, study: Any, trial: Any) -> None:
        from .sweeps import finished

        done = len(finished(study))
        value = "" if trial.value is None else f" {self.settings.objective} {trial.value:.4f}"
        line = f"trial {trial.number} {trial.state.name.lower()}{value} ({done}/{self.settings.n_trials})"
        try:
            best = study.best_trial
            line += f"; best {best.value:.4f} (trial {best.number})"
        except ValueError:  # no completed trial yet
            pass
        announce(line)


def trial_record(trial: Any) -> dict[str, Any]:
    duration = trial.duration.total_seconds() if trial.duration else None
    record = {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,
        "values": trial.params,
        "seconds": None if duration is None else round(duration, 1),
        "evaluations": len(trial.intermediate_values),
    }
    if "error" in trial.user_attrs:
        record["error"] = trial.user_attrs["error"]
    return record


def build_report(study: Any, settings: Any, sweep_dir: Path) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    report: dict[str, Any] = {
        "study_name": settings.study_name,
        "objective": settings.objective,
        "direction": settings.direction,
        "n_trials": settings.n_trials,
        "states": dict(sorted(states.items())),
        "trials": [trial_record(t) for t in trials],
        "best": None,
    }
    try:
        best = study.best_trial
    except ValueError:  # no trial completed
        return report
    report["best"] = {
        "number": best.number,
        "value": best.value,
        "values": best.params,
        "output_dir": str(sweep_dir / f"trial-{best.number:04d}"),
    }
    return report


def write_report(study: Any, settings: Any, sweep_dir: Path) -> Path:
    """report.json first (what `lfm sweep` needs), then the plots, then report.json again
    naming them: a plot that fails costs only that plot."""
    report = build_report(study, settings, sweep_dir)
    report["plots"] = []
    path = sweep_dir / REPORT_FILE
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if report["best"]:
        report["plots"] = write_plots(study, sweep_dir)
        path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    best = report["best"]
    if best:
        shown = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in best["values"].items())
        announce(
            f"best: trial {best['number']}, {settings.objective} {best['value']:.4f} ({shown})"
        )
    else:
        announce("no trial completed: there is no best trial")
    return path


def write_plots(study: Any, sweep_dir: Path) -> list[str]:
    """Optuna's optimization history and parameter importances, as HTML or PNG files."""
    written = []
    for name, plot in (
        ("optimization_history", "plot_optimization_history"),
        ("param_importances", "plot_param_importances"),
    ):
        try:
            written.append(_plot(study, plot, sweep_dir / name))
        except Exception as error:  # a plot is an extra: never the end of the sweep
            # Importances need two completed trials that differ; a missing library is a note.
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            announce(f"no {name} plot: {first[:300]}")
    return written


def _plot(study: Any, function: str, stem: Path) -> str:
    import optuna.visualization as plotly_plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        if plotly_plots.is_available():
            path = stem.with_suffix(".html")
            # plotly.min.js written once beside the pages: they open offline, and stay small.
            figure = getattr(plotly_plots, function)(study)
            figure.write_html(str(path), include_plotlyjs="directory")
            return path.name
        import optuna.visualization.matplotlib as matplotlib_plots

        if not matplotlib_plots.is_available():
            raise ImportError("neither plotly nor matplotlib is installed")
        import matplotlib

        matplotlib.use("Agg")
        axes = getattr(matplotlib_plots, function)(study)
        path = stem.with_suffix(".png")
        axes.figure.savefig(path, dpi=100, bbox_inches="tight")
        return path.name
