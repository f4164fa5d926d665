"""Resolver rules: small pure functions over a Context, run in this order.

Each rule fills values the config left unset (or set to `auto`) and says why, through
`Context.decide` and `Context.derive`; or it reports a cross-field problem through
`Context.error` / `Context.warn`. A rule never overrides a value the user wrote, with one
exception that keeps results the same: `fit_memory` may split a `batch_size` that does not fit
the declared GPU into micro-batches with gradient accumulation (same effective batch).
"""

from __future__ import annotations

from collections.abc import Callable

from ..resolve import Context
from .coverage import settings_not_yet_used
from .data import (
    dataset_source,
    document_dataset,
    local_paths_exist,
    local_paths_in_image,
    output_dir_in_ignore_files,
    portable_paths,
)
from .deployment import autoscaling_bounds, images_pinned, rollout_declared, serving_kind
from .distributed import fsdp_wrap_layer, global_batch, launcher, process_layout
from .distributed_checks import (
    checkpointing_with_sharding,
    offload_fits_strategy,
    precision_for_gpu,
    quantized_sharding,
)
from .embedding import embedding_task
from .endpoints import generator_endpoint, mlflow_credentials, webhook_from_environment
from .evaluation import evaluation_data, evaluation_enabled, evaluation_gates
from .identity import name_from_file
from .memory import fit_memory, gpu_names_known, method_auto
from .methods import (
    adapter_modules_for_family,
    gradient_checkpointing_for_qlora,
    learning_rate_for_method,
    method_parameters_apply,
    prompt_init_text,
    qlora_merge_caveat,
    target_modules_exist,
    target_modules_for_family,
)
from .model import base_model_location
from .preference import preference_objective
from .quality_shape import quality_control_shape
from .sweep import (
    sweep_enabled,
    sweep_objective,
    sweep_parameters,
    sweep_runs_one_process,
    sweep_sampler,
    sweep_storage,
)
from .training import (
    dataloader_workers,
    evaluation_schedule,
    half_precision_without_gpu,
    loss_alert_within_run,
    optimizer_auto,
    packing_default,
    report_to,
    speed_options,
    warmup_within_run,
)

Rule = Callable[[Context], None]

RULES: tuple[Rule, ...] = (
    name_from_file,
    generator_endpoint,
    webhook_from_environment,
    mlflow_credentials,
    base_model_location,
    embedding_task,
    method_auto,
    method_parameters_apply,
    prompt_init_text,
    qlora_merge_caveat,
    learning_rate_for_method,
    target_modules_for_family,
    adapter_modules_for_family,
    target_modules_exist,
    gradient_checkpointing_for_qlora,
    gpu_names_known,
    optimizer_auto,
    fit_memory,
    dataset_source,
    quality_control_shape,
    document_dataset,
    portable_paths,
    output_dir_in_ignore_files,
    local_paths_exist,
    settings_not_yet_used,
    evaluation_schedule,
    evaluation_enabled,
    evaluation_data,
    evaluation_gates,
    report_to,
    packing_default,
    preference_objective,
    dataloader_workers,
    speed_options,
    warmup_within_run,
    loss_alert_within_run,
    process_layout,
    launcher,
    global_batch,
    fsdp_wrap_layer,
    precision_for_gpu,
    half_precision_without_gpu,
    quantized_sharding,
    offload_fits_strategy,
    checkpointing_with_sharding,
    serving_kind,
    autoscaling_bounds,
    images_pinned,
    local_paths_in_image,
    rollout_declared,
    sweep_enabled,
    sweep_parameters,
    sweep_runs_one_process,
    sweep_objective,
    sweep_sampler,
    sweep_storage,
)
