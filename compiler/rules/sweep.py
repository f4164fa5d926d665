"""The `sweep` block: its defaults, its search space, objective, sampler, pruner and storage.

The block's fields are declared (with their defaults) in the schema's ``$defs/sweep``; they are
filled here, and only when the config has a sweep, so a config without one resolves exactly as
before (no sweep defaults in its lock file).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lfm.runtime.endpoints import url_without_credentials

from ..diagnostics import did_you_mean, dotted
from ..methods import METHODS
from ..resolve import Context, Decision, _record_config_and_defaults
from ..schema import load_schema
from .evaluation import PAIR_SCORES, SCORES_OF_METRIC, custom_name, scores_held_out_pairs
from .sweep_space import SWEEP, check_range, check_sweepable, resolve_name

EVAL_LOSS = "eval_loss"
# Scores that are better when lower: the rest are maximized.
LOWER_IS_BETTER = ("eval_loss", "perplexity", "latency_p50_ms", "latency_p95_ms")
EMBEDDED_STORAGE = ("sqlite", "journal")
DATABASE_SCHEMES = ("postgresql", "mysql", "sqlite", "oracle", "mssql")
# Query keys that carry a password (libpq's `password`, drivers' `pass`/`passwd`/`pwd`).
PASSWORD_KEYS = ("password", "pass", "passwd", "pwd")
OPTUNA_TPE_STARTUP = 10  # TPESampler's own n_startup_trials default


def sweep_enabled(ctx: Context) -> None:
    if not ctx.user_set("sweep"):
        return  # nothing derived: a config without a sweep resolves as it did before sweeps
    ctx.derive("sweep", True, "sweep_enabled", "the config has a sweep block: sweep.py is emitted")
    ctx.decisions.pop("model_config.sweep", None)  # one decision per field instead
    # The schema's defaults for the block, recorded like every other section's.
    _record_config_and_defaults(ctx, load_schema()["$defs"]["sweep"], SWEEP, ctx.source)  # type: ignore[arg-type]
    for key in [k for k in ctx.decisions if k.startswith("model_config.sweep.parameters.")]:
        del ctx.decisions[key]


def sweep_parameters(ctx: Context) -> None:
    """Each swept key -> (config path, spec); derived as `sweep_parameters`."""
    if not ctx.derived.get("sweep"):
        return
    resolved: list[tuple[str, dict[str, Any]]] = []
    seen: dict[tuple[str, ...], str] = {}
    for name, spec in (ctx.get(*SWEEP, "parameters") or {}).items():
        path = resolve_name(ctx, name)
        if path is None or not check_sweepable(ctx, name, path):
            continue
        if path in seen:
            ctx.error(
                (*SWEEP, "parameters", name), f"{name!r} and {seen[path]!r} are the same parameter"
            )
            continue
        seen[path] = name
        if check_range(ctx, name, path, spec):
            resolved.append((".".join(path), spec))
            key = dotted(("model_config", *SWEEP, "parameters", name))
            reason = f"searches {'.'.join(path)}: {_describe(spec)}"
            ctx.decisions[key] = Decision(key, spec, "sweep_parameters", reason)
    ctx.derive(
        "sweep_parameters",
        dict(resolved),
        "sweep_parameters",
        f"{len(resolved)} config parameter(s) searched, each by its full path",
    )


def _describe(spec: dict[str, Any]) -> str:
    if spec["type"] == "categorical":
        return "one of " + ", ".join(map(str, spec["choices"]))
    log = " on a log scale" if spec["type"] == "loguniform" or spec.get("log") else ""
    step = f" in steps of {spec['step']}" if "step" in spec else ""
    return f"{spec['type']} from {spec['low']} to {spec['high']}{log}{step}"


def sweep_runs_one_process(ctx: Context) -> None:
    """A trial runs train.py's training inside sweep.py's process: one process, one model."""
    if not ctx.derived.get("sweep"):
        return
    method = METHODS.get(str(ctx.get("fine_tuning", "method")))
    if method is not None and method.name == "hybrid_lora_adapter":
        ctx.error(
            SWEEP,
            "a sweep needs one trained model per trial, but hybrid_lora_adapter trains two",
            "sweep a lora config and an adapters config separately",
        )
    strategy = ctx.get("distributed", "strategy") or "none"
    if strategy != "none":
        ctx.error(
            SWEEP,
            "a sweep runs each trial in one process, but this bundle trains on several "
            f"(distributed.strategy is {strategy!r})",
            "sweep with distributed.strategy: none (and no distributed.gpus or distributed.nodes); "
            "scale out with sweep.parallelism instead",
        )


def sweep_objective(ctx: Context) -> None:
    if not ctx.derived.get("sweep"):
        return
    metric = ctx.get(*SWEEP, "objective")
    known = _measured(ctx)
    if metric not in known:
        ctx.error(
            (*SWEEP, "objective"),
            f"objective {metric!r} is not measured by this config",
            did_you_mean(str(metric), known) or f"measured: {', '.join(known)}",
        )
        return
    if metric == EVAL_LOSS and not ctx.get("dataset", "validation", "split_ratio"):
        ctx.error(
            (*SWEEP, "objective"),
            "objective eval_loss needs a holdout split, but dataset.validation.split_ratio is 0",
            "set dataset.validation.split_ratio (e.g. 0.1)",
        )
    _loss_scale_swept(ctx, metric)
    direction = ctx.get(*SWEEP, "direction")
    if direction == "auto":
        lower = metric in LOWER_IS_BETTER
        ctx.decide(
            (*SWEEP, "direction"),
            "minimize" if lower else "maximize",
            "sweep_objective",
            f"{metric} is better when {'lower' if lower else 'higher'}",
        )
    elif direction == "maximize" and metric in LOWER_IS_BETTER:
        ctx.warn(
            (*SWEEP, "direction"),
            f"direction maximize looks for the worst {metric}: lower is better",
            "use direction: minimize (or auto)",
        )
    _pruner(ctx, metric)
    _epochs_with_max_steps(ctx)


def _loss_scale_swept(ctx: Context, metric: str) -> None:
    """A preference loss is a function of its own settings (DPO's is -log sigmoid(beta *
    margin)): trials with different values are not scored by eval_loss on one yardstick."""
    if metric != EVAL_LOSS:
        return
    swept = [p for p in ctx.derived.get("sweep_parameters", {}) if ".preference." in p]
    if swept:
        ctx.warn(
            (*SWEEP, "objective"),
            f"eval_loss is computed with {', '.join(p.rsplit('.', 1)[-1] for p in swept)} "
            "itself, so trials with different values are not compared on one yardstick",
            "add an evaluation block and use objective: preference_accuracy (the held-out "
            "pairs, scored after each trial)",
        )


def _epochs_with_max_steps(ctx: Context) -> None:
    swept = ctx.derived.get("sweep_parameters") or {}
    max_steps = ctx.get("fine_tuning", "training", "max_steps") or -1
    epochs_only = "fine_tuning.training.epochs" in swept and (
        "fine_tuning.training.max_steps" not in swept
    )
    if epochs_only and max_steps > 0:
        ctx.warn(
            (*SWEEP, "parameters"),
            f"epochs is swept, but fine_tuning.training.max_steps is {max_steps}, which "
            "overrides epochs: every trial trains the same number of steps",
            "set max_steps: -1, or sweep max_steps instead",
        )


def _measured(ctx: Context) -> list[str]:
    known = [EVAL_LOSS]
    if ctx.derived.get("evaluation"):
        metrics = ctx.get("evaluation", "metrics") or []
        known += [s for m in metrics for s in SCORES_OF_METRIC.get(m, ())]
        known += [custom_name(e) for e in ctx.get("evaluation", "custom_evaluations") or []]
        known += list(ctx.get("evaluation", "benchmarks") or [])
        known += list(PAIR_SCORES) if scores_held_out_pairs(ctx) else []
    return known


def _pruner(ctx: Context, metric: str) -> None:
    path = (*SWEEP, "pruner")
    pruner = ctx.get(*path)
    during = metric == EVAL_LOSS
    if pruner == "auto":
        ctx.decide(
            path,
            "median" if during else "none",
            "sweep_objective",
            "eval_loss is reported at every evaluation during training: trials worse than the "
            "median of earlier ones at the same evaluation stop early (MedianPruner)"
            if during
            else f"{metric} is measured by evaluate.py after training, so there is nothing to "
            "prune on while a trial trains",
        )
    elif pruner != "none" and not during:
        ctx.error(
            path,
            f"pruner {pruner!r} needs values during training, but {metric} is measured only "
            "after training",
            "use objective: eval_loss, or pruner: none",
        )
    elif pruner != "none" and ctx.derived.get("eval_strategy") == "no":
        ctx.error(path, "pruning needs evaluations during training, and there is no holdout split")


def sweep_sampler(ctx: Context) -> None:
    if not ctx.derived.get("sweep"):
        return
    n_trials = ctx.get(*SWEEP, "n_trials")
    sampler = ctx.get(*SWEEP, "sampler")
    if sampler == "grid":
        _grid_size(ctx, n_trials)
    if sampler != "tpe" and ctx.user_set(*SWEEP, "startup_trials"):
        ctx.warn(
            (*SWEEP, "startup_trials"),
            f"startup_trials is ignored by sampler {sampler!r}: only tpe has random start-up "
            "trials",
        )
    if sampler == "tpe" and not ctx.user_set(*SWEEP, "startup_trials"):
        startup = min(OPTUNA_TPE_STARTUP, max(1, math.ceil(n_trials / 3)))
        ctx.decide(
            (*SWEEP, "startup_trials"),
            startup,
            "sweep_sampler",
            f"a third of the {n_trials} trials (at most Optuna's default of "
            f"{OPTUNA_TPE_STARTUP}) sample at random before TPE models what worked",
        )
    if not ctx.user_set(*SWEEP, "seed"):
        seed = ctx.get("fine_tuning", "training", "seed")
        ctx.decide((*SWEEP, "seed"), seed, "sweep_sampler", "fine_tuning.training.seed")
    if not ctx.user_set(*SWEEP, "study_name"):
        name = f"{ctx.get('name')}-{ctx.get('version')}"
        ctx.decide((*SWEEP, "study_name"), name, "sweep_sampler", "the config's name-version")


def _grid_size(ctx: Context, n_trials: int) -> None:
    size = 1
    for path, spec in (ctx.derived.get("sweep_parameters") or {}).items():
        if spec["type"] == "categorical":
            size *= len(spec["choices"])
        elif spec["type"] == "int" and not spec.get("log"):
            size *= (spec["high"] - spec["low"]) // spec.get("step", 1) + 1
        else:
            ctx.error(
                (*SWEEP, "sampler"),
                f"the grid sampler tries every value, but {path} is a continuous range",
                "give it choices (type: categorical), or use sampler: tpe or random",
            )
            return
    ctx.derive("sweep_grid_size", size, "sweep_sampler", f"{size} combinations in the grid")
    if n_trials > size:
        ctx.warn(
            (*SWEEP, "n_trials"),
            f"n_trials is {n_trials} but the grid has {size} combinations: the sweep stops "
            f"after {size}",
        )


def sweep_storage(ctx: Context) -> None:
    if not ctx.derived.get("sweep"):
        return
    path = (*SWEEP, "storage")
    storage = str(ctx.get(*path))
    if storage in EMBEDDED_STORAGE:
        return
    for message, hint in storage_problems(storage):
        ctx.error(path, message, hint)


def storage_problems(storage: str) -> list[tuple[str, str | None]]:
    """What is wrong with a database URL as a study's storage; messages never show a password."""
    shown = url_without_credentials(storage)
    try:
        url = urlsplit(storage)
        password = url.password
    except ValueError:
        return [
            (f"storage {shown!r} is not a valid URL", "e.g. postgresql://optuna@db:5432/optuna")
        ]
    scheme = url.scheme.split("+", 1)[0]
    if scheme == "postgres":
        return [
            (f"storage scheme {url.scheme!r} is not understood by SQLAlchemy", "use postgresql://")
        ]
    if not url.netloc and scheme != "sqlite" or scheme not in DATABASE_SCHEMES:
        hint = "e.g. postgresql://optuna@db:5432/optuna"
        return [(f"storage {shown!r} is neither sqlite, journal nor a database URL", hint)]
    problems: list[tuple[str, str | None]] = []
    keys = [k for k, _ in parse_qsl(url.query, keep_blank_values=True)]
    if password is not None or any(k.lower() in PASSWORD_KEYS for k in keys):
        problems.append(
            (
                "storage has a password in it, which would be written to the bundle",
                "write the URL without it and export the password where sweep.py runs "
                "(PGPASSWORD for PostgreSQL), or put the whole URL in LFM_SWEEP_STORAGE",
            )
        )
    if scheme == "sqlite" and not url.path.startswith("//"):
        # sqlite:///name.db is relative to wherever sweep.py is started: another run, from
        # another folder, would make a second, empty study.
        problems.append(
            (
                f"storage {shown!r} is a relative SQLite path",
                "use storage: sqlite (output/sweep/study.db in the bundle), or an absolute path "
                "(sqlite:////srv/sweeps/study.db)",
            )
        )
    return problems
