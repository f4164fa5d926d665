"""Resolver rules: each fills only what the user left unset, and says why."""

import json
from pathlib import Path

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze
from lfm.compiler.rules.methods import gpu_memory_gib, model_size_billions


def resolve_text(write_config, text):
    analysis = analyze(write_config(text))
    decisions = {d.path: d for d in analysis.resolved.decisions}
    return analysis, decisions


def config(extra: str = "", base: str = "meta-llama/Llama-2-7b-hf") -> str:
    return f"model_config:\n  base_model: {base}\n{extra}"


def test_user_values_are_kept_and_say_where_they_were_written(write_config):
    _, d = resolve_text(write_config, config("  fine_tuning:\n    parameters: {r: 64}\n"))
    r = d["model_config.fine_tuning.parameters.r"]
    assert (r.value, r.rule, r.reason) == (64, "config", "set in config.yaml:4:21")


def test_schema_defaults_fill_unset_values(write_config):
    _, d = resolve_text(write_config, config())
    assert d["model_config.fine_tuning.training.epochs"].value == 3
    assert d["model_config.fine_tuning.training.epochs"].rule == "default"


def test_name_defaults_to_the_config_file_name(write_config):
    _, d = resolve_text(write_config, config())
    assert d["model_config.name"].value == "config"
    assert d["model_config.name"].rule == "name_from_file"


@pytest.mark.parametrize(("method", "lr"), [("lora", 2e-4), ("qlora", 2e-4), ("full", 2e-5)])
def test_learning_rate_follows_the_method(write_config, method, lr):
    _, d = resolve_text(write_config, config(f"  fine_tuning: {{method: {method}}}\n"))
    assert d["model_config.fine_tuning.training.learning_rate"].value == lr


@pytest.mark.parametrize(
    ("base", "modules"),
    [
        ("meta-llama/Llama-2-7b-hf", ["q_proj", "v_proj"]),
        ("openai-community/gpt2", ["c_attn"]),
        ("EleutherAI/pythia-160m", ["query_key_value"]),
        ("microsoft/Phi-3-mini-4k-instruct", ["qkv_proj", "o_proj"]),
        ("someone/unknown-arch", "all-linear"),
    ],
)
def test_target_modules_follow_the_family(write_config, base, modules):
    _, d = resolve_text(write_config, config(base=base))
    decision = d["model_config.fine_tuning.parameters.target_modules"]
    assert decision.value == modules
    assert decision.rule == "target_modules_for_family"


def test_qlora_turns_on_gradient_checkpointing_unless_set(write_config):
    _, d = resolve_text(write_config, config("  fine_tuning: {method: qlora}\n"))
    assert d["model_config.fine_tuning.training.gradient_checkpointing"].value is True
    _, d = resolve_text(
        write_config,
        config(
            "  fine_tuning:\n    method: qlora\n    training: {gradient_checkpointing: false}\n"
        ),
    )
    assert d["model_config.fine_tuning.training.gradient_checkpointing"].value is False


def test_lora_parameters_with_full_fine_tuning_are_an_error(write_config):
    with pytest.raises(CompileError) as info:
        analyze(write_config(config("  fine_tuning:\n    method: full\n    parameters: {r: 8}\n")))
    [error] = [d for d in info.value.diagnostics if d.level == "error"]
    assert "parameter 'r' does not apply to method 'full'" in error.message
    assert error.location is not None and error.location.line == 5


def test_full_fine_tuning_drops_lora_defaults(write_config):
    analysis, d = resolve_text(write_config, config("  fine_tuning: {method: full}\n"))
    assert "model_config.fine_tuning.parameters.r" not in d
    assert "r" not in analysis.resolved.config["fine_tuning"]["parameters"]


@pytest.mark.parametrize(
    ("base", "gpu", "method"),
    [
        ("meta-llama/Llama-2-70b-hf", "1x_a10g", "qlora"),
        ("meta-llama/Llama-2-70b-hf", None, "qlora"),
        ("meta-llama/Llama-2-7b-hf", "1x_a10g", "lora"),
        ("meta-llama/Llama-2-13b-hf", "1x_h100", "lora"),
    ],
)
def test_method_auto_follows_the_seed_decision_tree(write_config, base, gpu, method):
    deploy = f"  deployment: {{resources: {{gpu: {gpu}}}}}\n" if gpu else ""
    _, d = resolve_text(
        write_config, config(f"  fine_tuning: {{method: auto}}\n{deploy}", base=base)
    )
    decision = d["model_config.fine_tuning.method"]
    assert (decision.value, decision.rule) == (method, "method_auto")


def test_model_size_and_gpu_memory_parsing():
    assert model_size_billions("meta-llama/Llama-2-7b-hf") == 7
    assert model_size_billions("HuggingFaceTB/SmolLM2-360M") == pytest.approx(0.36)
    assert model_size_billions("org/model") is None
    assert gpu_memory_gib("1x_a100") == 40
    assert gpu_memory_gib("h100") == 80
    assert gpu_memory_gib("none") is None


def test_document_sources_default_to_the_rag_folder(write_config):
    analysis, d = resolve_text(write_config, config("  dataset: {source: {type: rag_documents}}\n"))
    assert d["model_config.dataset.source.path"].value == "./rag/data/"


def test_missing_dataset_defaults_with_a_warning(write_config):
    analysis, d = resolve_text(write_config, config())
    assert d["model_config.dataset.source.path"].value == "./data/train.jsonl"
    assert any("no dataset.source.path" in w.message for w in analysis.diagnostics)


def test_hub_dataset_needs_a_path(write_config):
    with pytest.raises(CompileError, match="a hub dataset needs `path`"):
        analyze(write_config(config("  dataset: {source: {type: hub}}\n")))


def test_missing_local_paths_are_warnings_not_errors(write_config, tmp_path: Path):
    analysis, _ = resolve_text(
        write_config, config("  dataset: {source: {path: ./nope.jsonl}}\n", base="./m")
    )
    warned = [w.message for w in analysis.diagnostics if w.level == "warning"]
    assert any("'./m' does not exist here" in m for m in warned)
    assert any("'./nope.jsonl' does not exist here" in m for m in warned)
    (tmp_path / "m").mkdir()
    (tmp_path / "nope.jsonl").write_text("{}\n")
    analysis, _ = resolve_text(
        write_config, config("  dataset: {source: {path: ./nope.jsonl}}\n", base="./m")
    )
    assert not [w for w in analysis.diagnostics if "does not exist" in w.message]


def test_local_files_a_training_image_lacks_are_named(write_config):
    """The training image holds the bundle alone: a local base model or dataset is not in it."""

    def warned(text: str) -> list[str]:
        analysis, _ = resolve_text(write_config, text)
        return [w.message for w in analysis.diagnostics if "training image holds" in w.message]

    local = "  dataset: {source: {path: ./train.jsonl}}\n"
    on_cluster = local + "  deployment: {target: kubernetes}\n"
    assert len(warned(config(on_cluster, base="./m"))) == 2  # the base model and the dataset
    assert len(warned(config(on_cluster))) == 1  # a hub base model is pulled in the container
    assert warned(config(local, base="./m")) == []  # trained here: the files are here
    hub = "  dataset: {source: {type: hub, path: org/set}}\n  deployment: {target: docker}\n"
    assert warned(config(hub)) == []


def test_multi_gpu_with_strategy_none_becomes_ddp(write_config):
    analysis, d = resolve_text(write_config, config("  distributed: {gpus: 4}\n"))
    assert d["model_config.distributed.strategy"].value == "ddp"
    assert analysis.resolved.derived["num_processes"] == 4
    explicit, d = resolve_text(write_config, config("  distributed: {strategy: none, gpus: 4}\n"))
    assert d["model_config.distributed.strategy"].value == "none"  # written by the user: kept
    assert explicit.resolved.derived["num_processes"] == 1
    assert any("only one process trains" in w.message for w in explicit.diagnostics)


def test_eval_schedule_and_trackers(write_config):
    analysis, _ = resolve_text(
        write_config,
        config(
            "  dataset: {validation: {split_ratio: 0}}\n  monitoring: {wandb_project: p, tensorboard: true}\n"
        ),
    )
    assert analysis.resolved.derived["eval_strategy"] == "no"
    assert analysis.resolved.derived["report_to"] == ["wandb", "tensorboard"]


def test_settings_without_an_artifact_yet_are_named(write_config):
    analysis, _ = resolve_text(
        write_config,
        config(
            "  deployment: {target: kubernetes}\n"
            "  dataset: {source: {type: rag_documents}, synthetic_generation: {enabled: true}}\n"
        ),
    )
    warned = " ".join(w.message for w in analysis.diagnostics)
    assert "dataset.synthetic_generation is recorded in lfm.lock.json" in warned
    assert "deployment" not in warned  # deployment manifests are emitted now
    assert "documents" not in warned  # document sources are built now


def test_target_modules_are_checked_against_a_local_models_config(write_config, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(CompileError, match="'q_proj' is not a module of gpt2 models"):
        analyze(
            write_config(
                config("  fine_tuning: {parameters: {target_modules: [q_proj]}}\n", base="./m")
            )
        )
    analyze(
        write_config(
            config("  fine_tuning: {parameters: {target_modules: [c_attn]}}\n", base="./m")
        )
    )


def test_packing_is_on_except_for_virtual_token_methods(write_config):
    _, d = resolve_text(write_config, config())
    packing = d["model_config.fine_tuning.training.packing"]
    assert (packing.value, packing.rule) == (True, "packing_default")
    assert "same examples and tokens per step" in packing.reason
    _, d = resolve_text(write_config, config("  fine_tuning: {method: prefix_tuning}\n"))
    assert d["model_config.fine_tuning.training.packing"].value is False
    with pytest.raises(CompileError, match="packing cannot be used with prompt_tuning"):
        analyze(
            write_config(
                config("  fine_tuning:\n    method: prompt_tuning\n    training: {packing: true}\n")
            )
        )


def test_packing_is_off_for_one_example_per_device(write_config):
    _, d = resolve_text(write_config, config("  fine_tuning: {training: {batch_size: 1}}\n"))
    packing = d["model_config.fine_tuning.training.packing"]
    assert (packing.value, packing.rule) == (False, "packing_default")
    assert "no padding to remove" in packing.reason
    _, d = resolve_text(write_config, config("  fine_tuning: {training: {batch_size: 2}}\n"))
    assert d["model_config.fine_tuning.training.packing"].value is True
    # Set by the user, it stays on (their choice; the rule only picks the default).
    _, d = resolve_text(
        write_config, config("  fine_tuning: {training: {batch_size: 1, packing: true}}\n")
    )
    assert d["model_config.fine_tuning.training.packing"].value is True


def test_speed_defaults_say_why(write_config):
    analysis, d = resolve_text(write_config, config())
    optimizer = d["model_config.fine_tuning.training.optimizer"]
    assert (optimizer.value, optimizer.rule) == ("adamw_torch_fused", "optimizer_auto")
    workers = d["model_config.fine_tuning.training.dataloader_num_workers"]
    assert workers.value == 0 and "no GPU declared" in workers.reason
    assert "flash_attention_2 when flash-attn is installed" in d["derived.attention"].reason
    _, d = resolve_text(write_config, config("  resources: {gpu: 1x_a100}\n"))
    assert d["model_config.fine_tuning.training.dataloader_num_workers"].value == 2
    _, d = resolve_text(
        write_config, config("  fine_tuning: {training: {optimizer: adamw_torch}}\n")
    )
    assert d["model_config.fine_tuning.training.optimizer"].value == "adamw_torch"


def test_gpu_only_speedups_warn_without_a_gpu(write_config):
    analysis, _ = resolve_text(
        write_config, config("  fine_tuning: {training: {liger_kernels: true}}\n")
    )
    assert any("liger_kernels needs a CUDA GPU" in w.message for w in analysis.diagnostics)
    analysis, _ = resolve_text(
        write_config,
        config("  resources: {gpu: 1x_h100}\n  fine_tuning: {training: {liger_kernels: true}}\n"),
    )
    assert not any("liger" in w.message for w in analysis.diagnostics)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_warns_without_a_gpu(write_config, precision):
    training = f"  fine_tuning: {{training: {{precision: {precision}}}}}\n"
    analysis, _ = resolve_text(write_config, config(training))
    [warning] = [
        w for w in analysis.diagnostics if w.level == "warning" and "precision" in w.message
    ]
    assert warning.message.startswith(f"precision {precision} needs a CUDA GPU")
    assert warning.message.endswith("no GPU is declared in resources")
    assert warning.path == ("model_config", "fine_tuning", "training", "precision")
    assert warning.location is not None and warning.location.line == 3
    for declared in ("  resources: {gpu: 1x_h100}\n", "  resources: {gpu_memory_gb: 24}\n"):
        analysis, _ = resolve_text(write_config, config(declared + training))
        assert not any("CUDA" in w.message for w in analysis.diagnostics), declared
    for precision_ok in ("auto", "fp32"):
        analysis, _ = resolve_text(
            write_config, config(f"  fine_tuning: {{training: {{precision: {precision_ok}}}}}\n")
        )
        assert not any("CUDA" in w.message for w in analysis.diagnostics), precision_ok


def test_deepspeeds_resolved_precision_warns_without_a_gpu(write_config):
    """precision auto under DeepSpeed resolves to bf16 at compile time: train.py on a CPU
    would stop, and 'auto' cannot help, so the warning says fp32 is what a CPU run needs."""
    deepspeed = "  distributed: {strategy: deepspeed_zero2}\n"
    analysis, decisions = resolve_text(write_config, config(deepspeed))
    assert decisions["model_config.fine_tuning.training.precision"].value == "bf16"
    [warning] = [w for w in analysis.diagnostics if "CUDA" in w.message]
    assert warning.level == "warning"
    assert warning.message.startswith("precision bf16 was chosen for DeepSpeed")
    assert warning.message.endswith("no GPU is declared in resources")
    assert "precision: fp32" in (warning.hint or "") and "auto" not in (warning.hint or "")
    for declared in ("  resources: {gpu: 1x_h100}\n", "  resources: {gpu: 1x_t4}\n"):
        analysis, _ = resolve_text(write_config, config(declared + deepspeed))
        assert not any("CUDA" in w.message for w in analysis.diagnostics), declared
    fp32 = "  fine_tuning: {training: {precision: fp32}}\n"
    analysis, _ = resolve_text(write_config, config(fp32 + deepspeed))
    assert not any("CUDA" in w.message for w in analysis.diagnostics)


def _warmup_warnings(write_config, training: str) -> list[str]:
    analysis, _ = resolve_text(write_config, config(f"  fine_tuning: {{training: {training}}}\n"))
    return [
        w.format()
        for w in analysis.diagnostics
        if w.level == "warning" and w.path[-1:] == ("warmup_steps",)
    ]


def test_warmup_longer_than_the_run_warns_with_both_values(write_config):
    [warning] = _warmup_warnings(write_config, "{warmup_steps: 1000, max_steps: 10}")
    assert "warmup_steps (1000)" in warning and "max_steps (10)" in warning
    assert "learning rate" in warning and "1%" in warning  # peaks at 9/1000 of learning_rate
    assert "alerts" in warning
    assert warning.startswith("config.yaml:3:")
    [warning] = _warmup_warnings(write_config, "{warmup_steps: 10, max_steps: 10}")
    assert "90%" in warning  # the run ends on warmup's last step: alerts never act


def test_warmup_under_a_constant_schedule_only_delays_alerts(write_config):
    [warning] = _warmup_warnings(
        write_config, "{warmup_steps: 50, max_steps: 10, lr_scheduler: constant}"
    )
    assert "alerts" in warning and "learning rate" not in warning


@pytest.mark.parametrize(
    "training",
    [
        "{warmup_steps: 5, max_steps: 10}",
        "{warmup_steps: 1000}",  # max_steps -1: the total depends on the dataset's size
        "{warmup_steps: 1000, max_steps: -1, epochs: 1}",
        "{max_steps: 1}",
    ],
)
def test_warmup_within_the_run_or_of_unknown_length_is_fine(write_config, training):
    assert _warmup_warnings(write_config, training) == []


def _loss_alert_warnings(write_config, training: str, alerting: str = "loss_threshold: 0.5"):
    analysis, _ = resolve_text(
        write_config,
        config(
            f"  fine_tuning: {{training: {training}}}\n  monitoring: {{alerting: {{{alerting}}}}}\n"
        ),
    )
    return [
        w.format()
        for w in analysis.diagnostics
        if w.level == "warning" and w.path[-1:] == ("loss_threshold",)
    ]


def test_a_loss_threshold_the_run_never_judges_warns_with_the_numbers(write_config):
    [warning] = _loss_alert_warnings(write_config, "{max_steps: 8, logging_steps: 1}")
    assert warning.startswith("config.yaml:4:") and "loss_threshold can never fire" in warning
    assert "logs only 8 (max_steps 8, warmup_steps 0, logging_steps 1)" in warning
    assert "raise max_steps to at least 10" in warning
    # Warmup and logging_steps count: 2 + 9 logs is one short; 12 steps are enough.
    [warning] = _loss_alert_warnings(write_config, "{max_steps: 11, warmup_steps: 2}")
    assert "logs only 9 " in warning and "at least 12 or lower warmup_steps" in warning
    [warning] = _loss_alert_warnings(write_config, "{max_steps: 45, logging_steps: 5}")
    assert "logs only 9 " in warning and "at least 46 or lower logging_steps" in warning


@pytest.mark.parametrize(
    ("training", "alerting"),
    [
        ("{max_steps: 10}", "loss_threshold: 0.5"),  # the window fills at the last step
        ("{max_steps: 12, warmup_steps: 2}", "loss_threshold: 0.5"),
        ("{max_steps: 46, logging_steps: 5}", "loss_threshold: 0.5"),  # the last step logs too
        ("{max_steps: -1, epochs: 1}", "loss_threshold: 0.5"),  # length known only at run time
        ("{max_steps: 8}", "action: stop"),  # no loss_threshold set
        ("{max_steps: 8, warmup_steps: 8}", "loss_threshold: 0.5"),  # warmup's warning says it
    ],
)
def test_a_loss_threshold_the_run_can_judge_is_not_warned_about(write_config, training, alerting):
    assert _loss_alert_warnings(write_config, training, alerting) == []


def test_alerting_is_honored_not_warned_about(write_config):
    analysis, _ = resolve_text(
        write_config, config("  monitoring: {alerting: {loss_threshold: 2.0}}\n")
    )
    assert not any("alert" in w.message for w in analysis.diagnostics)


def test_liger_kernels_add_their_package_to_the_requirements(write_config):
    from lfm.compiler.pipeline import compile_config

    gpu = "  resources: {gpu: 1x_h100}\n"
    plain = compile_config(write_config(config(gpu), "plain.yaml")).files
    liger = compile_config(
        write_config(
            config(gpu + "  fine_tuning: {training: {liger_kernels: true}}\n"), "liger.yaml"
        )
    ).files
    assert "liger-kernel" not in plain["requirements.txt"]
    assert "liger-kernel==" in liger["requirements.txt"]
    assert "use_liger_kernel=True" in liger["train.py"]


@pytest.mark.parametrize("output_dir", ["#out", "./!keep", "./out*", "./runs/[a]", " out", "o\nx"])
def test_an_output_dir_an_ignore_file_would_misread_is_refused(write_config, output_dir):
    """.gitignore and .dockerignore name it: a comment or exception would ship the weights."""
    text = config(f"  fine_tuning:\n    training:\n      output_dir: {json.dumps(output_dir)}\n")
    with pytest.raises(CompileError, match="misread in the bundle's .gitignore"):
        analyze(write_config(text))


ROLLOUT = "  deployment:\n    rollout: {strategy: canary}\n"
ON_KUBERNETES = (
    "  deployment:\n    target: kubernetes\n    kubernetes: {image: registry.example.com/ml/bot}\n"
    "    rollout: {strategy: canary, stable_version: 1.2.0, gateway: inference-gateway}\n"
)


def _rollout_warnings(write_config, text: str) -> list[str]:
    analysis, _ = resolve_text(write_config, text)
    return [d.message for d in analysis.diagnostics if "this rollout can never run" in d.message]


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("  fine_tuning: {method: full}\n", "method: full trains a whole model"),
        ("  fine_tuning: {parameters: {merge_on_save: true}}\n", "merge_on_save registers"),
        ("  task: embedding\n", "task: embedding trains a whole embedding model"),
    ],
)
def test_a_rollout_lfm_serve_could_never_run_is_a_warning_saying_why(write_config, extra, why):
    base = "sentence-transformers/all-MiniLM-L6-v2" if "embedding" in extra else None
    text = config(extra + ROLLOUT, **({"base": base} if base else {}))
    [warning] = _rollout_warnings(write_config, text)
    assert why in warning and "LoRA adapters only" in warning
    assert "lfm rollout start` refuses it" in warning


@pytest.mark.parametrize(
    "text",
    [
        config(ROLLOUT),  # a LoRA adapter: lfm serve follows it
        config("  fine_tuning: {method: full}\n" + ON_KUBERNETES),  # vLLM's HTTPRoute carries it
    ],
)
def test_a_rollout_something_runs_is_not_warned_about(write_config, text):
    assert _rollout_warnings(write_config, text) == []


def test_the_declared_rollout_defaults_are_the_registrys_and_the_schemas():
    """The compiler cannot import the registry (one layer, kept apart by import-linter): its
    copy of the defaults, and the schema's "Default:" texts, must say what the registry does."""
    pytest.importorskip("semver")
    from lfm.compiler.rules.deployment import ROLLOUT_DEFAULTS
    from lfm.registry.rollouts import DEFAULT_HOLD_S, guard_default, parse_share

    schema = json.loads(
        (Path(__file__).parents[1] / "schemas/model_config.schema.json").read_text()
    )
    deployment = schema["$defs"]["model_config"]["properties"]["deployment"]["properties"]
    properties = deployment["rollout"]["properties"]
    for path, value, _ in ROLLOUT_DEFAULTS:
        key = path[-1]
        registry = DEFAULT_HOLD_S if key == "hold" else guard_default(key)
        mine = parse_share(value) if key == "max_error_rate_increase" else value
        assert mine == registry, path
        described = (
            properties[key] if key == "hold" else properties["guard_rails"]["properties"][key]
        )
        assert f"Default: {value}." in described["description"], path


def test_hostnames_without_the_kubernetes_route_are_a_warning(write_config):
    text = config("  deployment:\n    rollout: {strategy: canary, hostnames: [bot.example.com]}\n")
    analysis, _ = resolve_text(write_config, text)
    [warning] = [d for d in analysis.diagnostics if d.path[-1:] == ("hostnames",)]
    assert warning.level == "warning" and "nothing uses them" in warning.message
