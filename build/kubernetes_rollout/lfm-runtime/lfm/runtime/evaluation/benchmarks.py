"""Benchmarks (`hellaswag`, `mmlu`, `truthfulqa`, ...) through lm-evaluation-harness (`lm-eval`).

A benchmark is an lm-eval task: one of lm-eval's own by name, one defined by a task YAML in
`evaluation.benchmark_tasks_dir`, or a path to a task YAML. Local data files named in a task's
`dataset_kwargs.data_files` are read relative to the YAML (lm-eval itself reads them relative to
the working directory), so a task folder can be moved as a whole. A benchmark whose dataset cannot
be loaded (nothing is downloaded when offline) is an error that names the dataset and what to
provide.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import hub, paths, trust
from ..errors import RuntimeConfigError
from ..inputs import InputRefused, MiB, read_bounded
from .model_eval import LoadedModel

PathLike = str | os.PathLike[str]
# lm-eval metric keys read as the benchmark's headline `accuracy`, in order of preference.
HEADLINE = ("acc", "exact_match", "acc_norm", "f1")
# lm-eval's own task files are a few KB: 1 MiB is hundreds of times more, and PyYAML (pure
# Python, as lfm reads them) parses that in seconds.
MAX_TASK_FILE_BYTES = 1 * MiB


def run_benchmarks(
    loaded: LoadedModel,
    names: Sequence[str],
    *,
    tasks_dir: str | None = None,
    base_dir: PathLike | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    seed: int = 1234,
) -> dict[str, dict[str, float]]:
    """Run lm-eval tasks on an already-loaded model; benchmark -> {accuracy, metric: value}."""
    if not names:
        return {}
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        raise RuntimeConfigError(
            "evaluation.benchmarks need lm-evaluation-harness: pip install 'lfm[eval]'"
        ) from None
    manager, specs = task_specs(names, tasks_dir=tasks_dir, base_dir=base_dir)
    model = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size)
    output = simple_evaluate(
        model=model,
        tasks=specs,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=manager,
        log_samples=False,
        bootstrap_iters=0,  # standard errors by bootstrap take minutes; the scores do not
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    assert output is not None  # only non-zero ranks of a distributed run get None
    tasks = names_of(specs)
    return {
        name: _scores(output["results"].get(task, {}), name)
        for name, task in zip(names, tasks, strict=True)
    }


def task_specs(
    names: Sequence[str], *, tasks_dir: str | None = None, base_dir: PathLike | None = None
) -> tuple[Any, list[Any]]:
    """An lm-eval TaskManager and one loadable spec per benchmark; fail early and clearly."""
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    include = _tasks_dir(tasks_dir, base_dir)
    local = TaskManager(include_path=str(include), include_defaults=False) if include else None
    # lm-eval's own index takes seconds to build: only when a benchmark is not a local one.
    builtin_needed = any(
        not _is_file(n) and (local is None or n not in local.task_index) for n in names
    )
    if builtin_needed:
        # lm-eval's own tasks read their data from the hub: where it cannot be reached, from the
        # local cache at once (a missing dataset is then one error, not a minute of retries).
        if not hub.offline() and not hub.reachable():
            hub.go_offline()
        manager = TaskManager(include_path=str(include) if include else None)
    else:
        manager = local or TaskManager(include_defaults=False)
    specs: list[Any] = []
    for name in names:
        if _is_file(name):
            path = Path(paths.resolve_local(name, base_dir))
            if not path.exists():
                raise RuntimeConfigError(f"evaluation.benchmarks: task file {path} does not exist")
            if _task_runs_code(path):
                problem = trust.folder_problem(path.parent, "evaluation.benchmarks")
                if problem:
                    raise RuntimeConfigError(problem)
            spec: Any = _with_local_data(load_yaml(path), path.parent)
        else:
            entry = manager.task_index.get(name) if manager else None
            if entry is None:
                raise RuntimeConfigError(_unknown(name, manager, include))
            yaml_path = getattr(entry, "yaml_path", None)
            is_task = "task" in (getattr(entry, "cfg", None) or {})
            spec = (
                _with_local_data(load_yaml(yaml_path), yaml_path.parent)
                if yaml_path and is_task
                else name
            )
        _check_loads(manager, spec, name)
        specs.append(spec)
    return manager, specs


def names_of(specs: Sequence[Any]) -> list[str]:
    return [s["task"] if isinstance(s, dict) else str(s) for s in specs]


def _tasks_dir(tasks_dir: str | None, base_dir: PathLike | None) -> Path | None:
    if not tasks_dir:
        return None
    path = paths.resolve_local(tasks_dir, base_dir)
    if not path.is_dir():
        raise RuntimeConfigError(
            f"evaluation.benchmark_tasks_dir: {path} is not a directory of lm-eval task YAMLs"
        )
    if _runs_code(path):
        problem = trust.folder_problem(path, "evaluation.benchmark_tasks_dir")
        if problem:
            raise RuntimeConfigError(problem)
    return path


def _runs_code(folder: Path) -> bool:
    """Whether any task YAML in ``folder`` makes lm-eval import Python (see _task_runs_code)."""
    tasks = sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")])
    read: set[Path] = set()
    return any(_task_runs_code(path, read) for path in tasks)


def _task_runs_code(path: Path, read: set[Path] | None = None) -> bool:
    """A ``!function`` tag anywhere in the YAML (parsed, so an escaped or %TAG spelling counts
    too), or an ``include:`` of a file that runs code or cannot be read: lm-eval imports Python
    from the folder of the file that names the function.

    ``read``: the files already looked at in this check. Each is read once: one that ran code
    ended the check, so one seen again is harmless or in progress (an include cycle), and
    files that include each other in layers cost their number, not an exponential."""
    import yaml

    path = path.resolve()
    read = set() if read is None else read
    if path in read:
        return False
    read.add(path)
    try:
        text = read_bounded(path, MAX_TASK_FILE_BYTES, "a task file").decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except InputRefused as exc:  # a FIFO or a device would hang lm-eval; a huge file, bloat it
        raise RuntimeConfigError(f"lm-eval task {path} is {exc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return True  # lm-eval would read it some other way: not shown harmless
    nodes = [root] if root is not None else []
    visited: set[int] = set()  # an alias is its anchor's node: walk it once, not once per use
    while nodes:
        node = nodes.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if node.tag == "!function":
            return True
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == "include" and isinstance(value, yaml.ScalarNode):
                    included = Path(value.value).expanduser()
                    included = included if included.is_absolute() else path.parent / included
                    if _task_runs_code(included, read):
                        return True
                nodes += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            nodes += node.value
    return False


def _is_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def _with_local_data(config: dict[str, Any], yaml_dir: Path) -> dict[str, Any]:
    """Make a task's relative `data_files` relative to its YAML instead of the working directory."""
    kwargs = config.get("dataset_kwargs") or {}
    files = kwargs.get("data_files")
    if files is None:
        return config

    def fix(value: Any) -> Any:
        if isinstance(value, str) and not Path(value).is_absolute() and "://" not in value:
            return str(yaml_dir / value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    return {**config, "dataset_kwargs": {**kwargs, "data_files": fix(files)}}


def _check_loads(manager: Any, spec: Any, name: str) -> None:
    """Build the task now (it loads its dataset), so a missing dataset fails before any model run."""
    try:
        manager.load([spec])
    except (
        Exception
    ) as exc:  # lm-eval and datasets raise many kinds (ConnectionError, FileNotFound)
        raise RuntimeConfigError(_missing_data(name, spec, exc)) from None


def _missing_data(name: str, spec: Any, exc: Exception) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    config = spec if isinstance(spec, dict) else {}
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    if files:
        where = f"its data files {_flat(files)}"
    elif config.get("dataset_path"):
        where = f"its dataset {config['dataset_path']!r}"
    else:
        where = "its dataset"
    return (
        f"evaluation.benchmarks {name!r}: {where} could not be loaded ({detail}); provide it: "
        f"run once with network access so the Hugging Face cache holds it (then HF_DATASETS_OFFLINE=1), "
        f"or write an lm-eval task YAML with dataset_path: json and dataset_kwargs.data_files "
        f"pointing at a local copy, in evaluation.benchmark_tasks_dir"
    )


def _flat(files: Any) -> str:
    if isinstance(files, dict):
        return ", ".join(_flat(v) for v in files.values())
    if isinstance(files, list):
        return ", ".join(_flat(v) for v in files)
    return str(files)


def _unknown(name: str, manager: Any, include: Path | None) -> str:
    known = list(manager.task_index) if manager else []
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = f" or in {include}" if include else ""
    return f"evaluation.benchmarks: no lm-eval task named {name!r} in lm-eval{where}{hint}"


def _scores(task_results: dict[str, Any], name: str) -> dict[str, float]:
    """lm-eval's `metric,filter` keys -> plain metric names; `accuracy` is the headline."""
    values: dict[str, float] = {}
    for key, value in task_results.items():
        metric = key.split(",", 1)[0]
        if "stderr" in metric or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        values.setdefault(metric, float(value))
    if not values:
        raise RuntimeConfigError(f"evaluation.benchmarks {name!r}: lm-eval returned no scores")
    headline = next((m for m in HEADLINE if m in values), next(iter(values)))
    return {"accuracy": values[headline], **values}
