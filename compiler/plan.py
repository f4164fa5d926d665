"""Pass 5, plan: the frozen, typed IR that templates render. Nothing after this reads raw config.

Every value here is final: paths are rebased for the bundle, method classes are named, and the
keyword arguments of each Hugging Face call are listed in the order the script writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__
from .methods import METHODS, Adapter, Arg
from .paths import is_local, rebase, relative_posix
from .plan_deployment import DeploymentPlan, deployment_plan
from .plan_distributed import DistributedPlan, distributed_arguments, distributed_plan
from .plan_embedding import (
    EmbeddingPlan,
    embedding_arguments,
    embedding_plan,
    embedding_requirements,
)
from .plan_preference import PreferencePlan, preference_plan, preference_requirements
from .plan_sweep import SweepPlan, sweep_plan
from .requirements import evaluation_requirements, requirements_for, sweep_requirements
from .resolve import Decision, Resolved
from .rules.data import DOCUMENT_TYPES
from .rules.evaluation import custom_name, custom_path
from .rules.training import BUNDLE_OUTPUT

LOCK_FORMAT = 1


@dataclass(frozen=True)
class ModelPlan:
    base_model: str  # a hub id, or a path relative to the bundle directory
    source: str  # "hub" | "local"
    gradient_checkpointing: bool
    quantize_4bit: bool
    trains_all_weights: bool  # full fine-tuning: load fp32 master weights

    @property
    def source_note(self) -> str:
        return (
            "a local directory, relative to this file"
            if self.source == "local"
            else "a Hugging Face hub id"
        )


@dataclass(frozen=True)
class MethodPlan:
    name: str
    summary: str
    adapters: tuple[Adapter, ...]  # none: full fine-tuning; several: trained one after another
    quantize_4bit: bool
    merge_on_save: bool

    @property
    def artifact(self) -> str:
        if not self.adapters:
            return "model"
        if len(self.adapters) == 1:
            return "adapter"
        return "adapters (one folder each: " + ", ".join(a.name for a in self.adapters) + ")"

    @property
    def peft_imports(self) -> tuple[str, ...]:
        if not self.adapters:
            return ()
        names = {a.config.class_name for a in self.adapters} | {"get_peft_model"}
        if self.quantize_4bit:
            names.add("prepare_model_for_kbit_training")
        return tuple(sorted(names, key=lambda n: (n[0].islower(), n)))


@dataclass(frozen=True)
class DataPlan:
    source_type: str
    path: str
    format: str
    max_length: int
    holdout_ratio: float
    train_on_inputs: bool
    seed: int
    split: str
    # Document sources: the settings that build the dataset (key, value), in a stable order.
    documents: tuple[tuple[str, Any], ...] = ()

    @property
    def summary(self) -> str:
        loss = "prompt and response tokens" if self.train_on_inputs else "the response tokens only"
        held = (
            f"{self.holdout_ratio:.0%} of examples held out"
            if self.holdout_ratio
            else "no holdout split"
        )
        records = (
            "records (format detected from the first)"
            if self.format == "auto"
            else f"{self.format} records"
        )
        if self.documents:
            records = f"documents -> {self.format} records (built once, cached by content hash)"
            held = held.replace("of examples", "of documents")
        return f"{records} -> token ids; loss on {loss}; {held}."


@dataclass(frozen=True)
class EnvironmentVariable:
    name: str
    value: str
    # A local MLflow store: ``value`` is its path relative to the bundle, after this URI prefix
    # ("sqlite:///", "file://" or ""), made absolute when train.py starts.
    bundle_path_prefix: str | None = None


@dataclass(frozen=True)
class TrainingPlan:
    output_dir: str  # relative to the bundle directory, or absolute
    precision: str
    seed: int
    arguments: tuple[Arg, ...]  # TrainingArguments(...), minus output_dir/bf16/fp16
    environment: tuple[EnvironmentVariable, ...]  # what the trackers read (WANDB_PROJECT, ...)
    trackers: tuple[str, ...]  # report_to without "none": checked when train.py starts
    packing: bool
    attention: str  # "auto" is chosen by train.py when it starts
    alerts: tuple[Arg, ...]  # AlertCallback(...) keyword arguments

    @property
    def output_is_absolute(self) -> bool:
        return self.output_dir.startswith(("/", "~"))

    @property
    def output_in_bundle(self) -> str | None:
        """The output folder's name when it is inside the bundle (for .gitignore), else None."""
        return (
            None
            if self.output_is_absolute or self.output_dir.startswith("..")
            else self.output_dir.removeprefix("./")
        )


@dataclass(frozen=True)
class EvaluationPlan:
    """What evaluate.py measures; every path is relative to the bundle directory."""

    metrics: tuple[str, ...]
    test_set: str | None  # None: the holdout split train.py held out
    custom_sets: tuple[Arg, ...]  # name -> Q&A file
    benchmarks: tuple[str, ...]
    benchmark_tasks_dir: str | None
    num_fewshot: int | None
    max_examples: int | None
    generation: tuple[Arg, ...]  # GenerationSettings(...)
    compare_with_base: bool
    run_after_training: bool
    gates: tuple[Arg, ...]  # Gates(...), only the gates that are set
    adapters: tuple[str, ...]  # hybrid methods: every adapter's folder, each evaluated
    model_id: str
    held_out_pairs: bool = False  # a preference objective: score the pairs train.py held out


@dataclass(frozen=True)
class Plan:
    name: str
    version: str
    description: str | None
    lfm_version: str
    config_file: str  # the input config, relative to the bundle directory
    config_sha256: str
    config_shape: str
    model: ModelPlan
    method: MethodPlan
    data: DataPlan
    training: TrainingPlan
    distributed: DistributedPlan
    evaluation: EvaluationPlan | None  # None: the config has no evaluation block
    deployment: DeploymentPlan
    requirements: tuple[str, ...]
    decisions: tuple[Decision, ...]
    resolved_json: str  # the complete model_config, canonical JSON
    sweep: SweepPlan | None = None  # None: the config has no sweep block
    embedding: EmbeddingPlan | None = None  # None: task: generation
    preference: PreferencePlan | None = None  # None: objective sft

    @property
    def task(self) -> str:
        return "generation" if self.embedding is None else "embedding"

    @property
    def vendored_packages(self) -> tuple[str, ...]:
        """The lfm packages the bundle carries as source (see vendor.py): what its scripts
        import, and nothing else."""
        return ("dataset", "runtime") if self.data.documents else ("runtime",)

    @property
    def runtime_modules(self) -> tuple[str, ...]:
        """The lfm.runtime modules train.py imports."""
        modules = {"data", "modeling", "training"}
        if self.method.merge_on_save:
            modules.add("export")
        if self.distributed.multi_process:
            modules.add("launch")  # the process-group backend when there is no GPU
        if self.sweep:
            modules.add("trials")  # sweep.py's trials run main() with their own values
        if self.preference:
            modules.add("preference")  # the pairs, TRL's trainers, held-out preference accuracy
        return tuple(sorted(modules))


def build_plan(
    resolved: Resolved, *, config_path: Path, config_sha256: str, shape: str, bundle_dir: Path
) -> Plan:
    cfg, derived = resolved.config, resolved.derived
    ft, train = cfg["fine_tuning"], cfg["fine_tuning"]["training"]
    method = _method_plan(ft)
    distributed = distributed_plan(cfg, derived)

    def for_bundle(value: str, *, always_path: bool = False) -> str:
        """A config value for the bundle: local paths rebased, hub ids as they are."""
        if always_path and not is_local(value):
            value = f"./{value}"  # a dataset or output path is a path even without ./
        return rebase(value, config_path.parent, bundle_dir) if is_local(value) else value

    training = _training_plan(cfg, derived, for_bundle, distributed)
    embedding = embedding_plan(cfg) if cfg.get("task") == "embedding" else None
    if embedding is not None:
        training = replace(training, arguments=embedding_arguments(training.arguments))
    base_model = for_bundle(cfg["base_model"])
    preference = preference_plan(cfg, derived)
    return Plan(
        name=cfg["name"],
        version=cfg["version"],
        description=cfg.get("description"),
        lfm_version=__version__,
        config_file=relative_posix(config_path, bundle_dir),
        config_sha256=config_sha256,
        config_shape=shape,
        model=ModelPlan(
            base_model=base_model,
            source=derived["base_model_source"],
            gradient_checkpointing=train["gradient_checkpointing"],
            quantize_4bit=method.quantize_4bit,
            trains_all_weights=not method.adapters,
        ),
        method=method,
        data=_data_plan(cfg, for_bundle),
        training=training,
        distributed=distributed,
        deployment=deployment_plan(
            cfg, derived, distributed, training.output_dir, training.output_in_bundle, base_model
        ),
        evaluation=_evaluation_plan(cfg, method, for_bundle, bool(derived.get("held_out_pairs")))
        if derived["evaluation"]
        else None,
        requirements=tuple(
            sorted(  # one pin per package: evaluation and document sources share matplotlib
                set(
                    requirements_for(
                        METHODS[method.name],
                        cfg["distributed"]["strategy"],
                        derived["report_to"],
                        ("liger-kernel",) if train["liger_kernels"] else (),
                        documents=cfg["dataset"]["source"]["type"] in DOCUMENT_TYPES,
                    )
                    + (evaluation_requirements() if derived["evaluation"] and not embedding else ())
                    + (sweep_requirements() if derived.get("sweep") else ())
                    + (embedding_requirements() if embedding else ())
                    + (preference_requirements() if preference else ())
                )
            )
        ),
        decisions=resolved.decisions,
        resolved_json=json.dumps(cfg, sort_keys=True, indent=2, ensure_ascii=False),
        sweep=(
            sweep_plan(
                cfg, derived, method.adapters[0].config.class_name if method.adapters else ""
            )
            if derived.get("sweep")
            else None
        ),
        embedding=embedding,
        preference=preference,
    )


def _method_plan(ft: dict[str, Any]) -> MethodPlan:
    method = METHODS[ft["method"]]
    params = ft.get("parameters", {})
    return MethodPlan(
        name=method.name,
        summary=method.summary,
        adapters=method.build(params),
        quantize_4bit=method.quantize_4bit,
        merge_on_save=bool(params.get("merge_on_save", False)),
    )


PathMapper = Callable[..., str]


def _data_plan(cfg: dict[str, Any], for_bundle: PathMapper) -> DataPlan:
    ds = cfg["dataset"]
    source, pre = ds["source"], ds["preprocessing"]
    # A hub dataset's path is an id unless it looks like a path (a local dataset directory).
    path = for_bundle(source["path"], always_path=source["type"] != "hub")
    return DataPlan(
        source_type=source["type"],
        path=path,
        format=pre["format"],
        max_length=pre["max_length"],
        holdout_ratio=ds["validation"]["split_ratio"],
        train_on_inputs=pre["train_on_inputs"],
        seed=cfg["fine_tuning"]["training"]["seed"],
        split=source["split"],
        documents=_document_settings(ds) if source["type"] in DOCUMENT_TYPES else (),
    )


def _document_settings(ds: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """What lfm.dataset needs to build the records (see lfm.dataset.options)."""
    pre = ds["preprocessing"]
    return (
        ("include_metadata", ds["source"]["include_metadata"]),
        ("chunk_size", pre["chunk_size"]),
        ("chunk_overlap", pre["chunk_overlap"]),
        ("qa_generation", dict(sorted(pre.get("qa_generation", {}).items()))),
        ("quality_control", dict(sorted(ds.get("quality_control", {}).items()))),
        ("quality_threshold", ds["validation"]["quality_threshold"]),
        ("augmentation", ds["augmentation"]),
    )


def _training_plan(
    cfg: dict[str, Any],
    derived: dict[str, Any],
    for_bundle: PathMapper,
    distributed: DistributedPlan,
) -> TrainingPlan:
    t = cfg["fine_tuning"]["training"]
    output = for_bundle(t["output_dir"], always_path=True) if "output_dir" in t else BUNDLE_OUTPUT
    evaluate = derived["eval_strategy"]
    args = [
        Arg("num_train_epochs", t["epochs"]),
        Arg("max_steps", t["max_steps"]),
        Arg("per_device_train_batch_size", t["batch_size"]),
        Arg("per_device_eval_batch_size", t["batch_size"]),
        Arg("gradient_accumulation_steps", t["gradient_accumulation_steps"]),
        Arg("learning_rate", t["learning_rate"]),
        Arg("lr_scheduler_type", t["lr_scheduler"]),
        Arg("warmup_steps", t["warmup_steps"]),
        Arg("weight_decay", t["weight_decay"]),
        Arg("max_grad_norm", t["max_grad_norm"]),
        Arg("optim", t["optimizer"]),
        Arg("gradient_checkpointing", t["gradient_checkpointing"]),
        Arg("torch_compile", t["torch_compile"]),
        Arg("use_liger_kernel", t["liger_kernels"]),
        Arg("logging_steps", t["logging_steps"]),
        # transformers' filter tests every step's loss for NaN on the host (two GPU syncs per
        # step) and then hides it from the log, where the NaN alert would see it.
        Arg("logging_nan_inf_filter", False, "a NaN loss is logged (and alerted), not hidden"),
        Arg("eval_strategy", evaluate),
    ]
    if evaluate == "steps":
        args.append(Arg("eval_steps", t["eval_steps"]))
    args += [
        Arg("save_strategy", "steps"),
        Arg("save_steps", t["save_steps"]),
        Arg("save_total_limit", t["save_total_limit"]),
        Arg("seed", t["seed"]),
        Arg("dataloader_num_workers", t["dataloader_num_workers"]),
        Arg("report_to", derived["report_to"]),
    ]
    trackers = tuple(name for name in derived["report_to"] if name != "none")
    if trackers:  # the run's name in W&B and MLflow (theirs is a random one)
        args.append(Arg("run_name", f"{cfg['name']}-{cfg['version']}"))
    args += [
        Arg("remove_unused_columns", False),
        *distributed_arguments(distributed, derived),
        Arg("disable_tqdm", True),  # training.show_progress draws the progress instead
    ]
    monitoring = cfg["monitoring"]
    environment = []
    if monitoring.get("wandb_project"):
        environment.append(EnvironmentVariable("WANDB_PROJECT", monitoring["wandb_project"]))
    if monitoring.get("mlflow_tracking_uri"):
        environment += [
            _mlflow_uri(monitoring["mlflow_tracking_uri"], for_bundle),
            # One experiment per model, not MLflow's "Default".
            EnvironmentVariable("MLFLOW_EXPERIMENT_NAME", cfg["name"]),
        ]
    alerting = monitoring.get("alerting", {})
    alerts = (
        Arg("run_name", cfg["name"]),
        Arg("loss_threshold", alerting.get("loss_threshold")),
        Arg("divergence_factor", alerting["divergence_factor"]),
        Arg("quality_degradation", alerting.get("quality_degradation")),
        # No webhook_url: it is a credential, read from the environment (rules/endpoints.py).
        Arg("action", alerting["action"]),
    )
    return TrainingPlan(
        output_dir=output,
        precision=t["precision"],
        seed=t["seed"],
        arguments=tuple(args),
        environment=tuple(environment),
        trackers=trackers,
        packing=t["packing"],
        attention=t["attention"],
        alerts=alerts,
    )


def _mlflow_uri(uri: str, for_bundle: PathMapper) -> EnvironmentVariable:
    """A server URI as it is; a relative local store relative to the config, like any path
    in it (MLflow would take it relative to wherever train.py is started)."""
    from lfm.runtime.trackers import mlflow_local_store  # (stdlib only: no torch here)

    store = mlflow_local_store(uri)
    if store is None or not store[1] or store[1].startswith(("/", "~")):
        return EnvironmentVariable("MLFLOW_TRACKING_URI", uri)  # a server, or absolute already
    prefix, path = store
    return EnvironmentVariable(
        "MLFLOW_TRACKING_URI", for_bundle(path, always_path=True), bundle_path_prefix=prefix
    )


def _evaluation_plan(
    cfg: dict[str, Any], method: MethodPlan, for_bundle: PathMapper, held_out_pairs: bool
) -> EvaluationPlan:
    ev = cfg["evaluation"]
    gates = ev.get("gates", {})
    generation = ev["generation"]
    return EvaluationPlan(
        metrics=tuple(ev["metrics"]),
        test_set=for_bundle(ev["test_set"], always_path=True) if ev.get("test_set") else None,
        custom_sets=tuple(
            Arg(custom_name(entry), for_bundle(custom_path(entry), always_path=True))
            for entry in ev["custom_evaluations"]
        ),
        benchmarks=tuple(
            for_bundle(b, always_path=True) if b.endswith((".yaml", ".yml")) else b
            for b in ev["benchmarks"]
        ),
        benchmark_tasks_dir=(
            for_bundle(ev["benchmark_tasks_dir"], always_path=True)
            if ev.get("benchmark_tasks_dir")
            else None
        ),
        num_fewshot=ev.get("num_fewshot"),
        max_examples=ev.get("max_examples"),
        generation=tuple(
            Arg(name, generation[name])
            for name in ("max_new_tokens", "do_sample", "temperature", "top_p", "batch_size")
        ),
        compare_with_base=ev["compare_with_base"],
        run_after_training=ev["run_after_training"],
        gates=tuple(
            Arg(name, gates[name])
            for name in ("max_perplexity", "min_scores", "min_improvement", "max_regression")
            if name in gates
        ),
        adapters=tuple(a.name for a in method.adapters) if len(method.adapters) > 1 else (),
        model_id=f"{cfg['name']}_v{cfg['version']}",
        held_out_pairs=held_out_pairs,
    )
