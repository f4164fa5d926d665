"""The `sweep` block at compile time: names resolved, values checked, sweep.py as planned.

The bad-input cases with their exact messages are in tests/bad_configs/sweep_*.yaml; these
check what the decisions and the emitted files hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from lfm.compiler.best_config import best_config_text
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config

BASE = """\
model_config:
  name: swept
  base_model: ./model
  dataset:
    source: {type: local, path: ./train.jsonl}
    validation: {split_ratio: 0.1}
"""


def sweep_config(sweep: str, extra: str = "") -> str:
    return BASE + extra + "  sweep:\n" + "".join(f"    {line}\n" for line in sweep.splitlines())


def errors(write_config, text: str) -> list[str]:
    with pytest.raises(CompileError) as caught:
        analyze(write_config(text))
    return [d.message for d in caught.value.diagnostics if d.level == "error"]


def test_no_sweep_block_changes_nothing(write_config) -> None:
    files = compile_config(write_config(BASE), "bundle").files
    assert "sweep.py" not in files
    assert "trial" not in files["train.py"]
    assert "optuna" not in files["requirements.txt"]
    assert '"sweep"' not in files["lfm.lock.json"]


def test_short_names_resolve_and_defaults_are_explained(write_config) -> None:
    text = sweep_config(
        "parameters:\n"
        "  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
        "  fine_tuning.parameters.r: {type: categorical, choices: [8, 16]}\n"
        "  warmup_steps: {type: int, low: 0, high: 10, step: 2}\n"
        "n_trials: 9\n"
    )
    resolved = analyze(write_config(text)).resolved
    assert list(resolved.derived["sweep_parameters"]) == [
        "fine_tuning.training.learning_rate",
        "fine_tuning.parameters.r",
        "fine_tuning.training.warmup_steps",
    ]
    decided = {d.path: d for d in resolved.decisions}
    assert decided["model_config.sweep.direction"].value == "minimize"
    assert decided["model_config.sweep.pruner"].value == "median"
    assert decided["model_config.sweep.startup_trials"].value == 3  # a third of 9
    assert decided["model_config.sweep.study_name"].value == "swept-0.1.0"
    assert "searches fine_tuning.training.learning_rate" in (
        decided["model_config.sweep.parameters.learning_rate"].reason
    )


def test_sweep_py_calls_optuna_with_the_values(write_config) -> None:
    text = sweep_config(
        "parameters:\n"
        "  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
        "  batch_size: {type: categorical, choices: [4, 8]}\n"
        "  lora_alpha: {type: int, low: 8, high: 64, step: 8}\n"
        "pruner: successive_halving\n"
        "sampler: random\n"
        "timeout_minutes: 30\n"
    )
    files = compile_config(write_config(text), "bundle").files
    sweep = files["sweep.py"]
    ast.parse(sweep)  # valid Python
    assert '"fine_tuning.training.learning_rate", 1e-05, 0.01, log=True,' in sweep, sweep
    assert '"fine_tuning.parameters.lora_alpha", 8, 64, step=8,' in sweep
    # The train batch only: every trial is scored with the config's eval batch size.
    assert (
        '"fine_tuning.training.batch_size": (("TrainingArguments", '
        '"per_device_train_batch_size"),),'
    ) in sweep
    assert "optuna.samplers.RandomSampler(" in sweep
    assert "optuna.pruners.SuccessiveHalvingPruner(" in sweep
    assert "timeout_s=1800.0," in sweep
    assert "optuna==" in files["requirements.txt"]
    train = files["train.py"]
    for seam in ("trial.configure(peft_config)", "trial.configure(args)", "trial.finish(trainer)"):
        assert seam in train


def test_an_evaluation_score_objective_evaluates_each_trial(write_config) -> None:
    text = sweep_config(
        "parameters:\n  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
        "objective: rougeL\n",
        extra="  evaluation:\n    metrics: [perplexity, rouge]\n",
    )
    compiled = compile_config(write_config(text), "bundle")
    decided = {d.path: d.value for d in compiled.analysis.resolved.decisions}
    assert decided["model_config.sweep.direction"] == "maximize"
    assert decided["model_config.sweep.pruner"] == "none"  # rougeL exists only after training
    sweep = compiled.files["sweep.py"]
    assert 'evaluate.main(run.folder, run.folder / "eval", compare_with_base=False)' in sweep
    assert "compare_with_base: bool = True" in compiled.files["evaluate.py"]


def test_methods_and_layouts_a_trial_cannot_run(write_config) -> None:
    lr = "parameters:\n  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
    hybrid = "  fine_tuning: {method: hybrid_lora_adapter}\n"
    assert any("trains two" in e for e in errors(write_config, sweep_config(lr, hybrid)))
    ddp = "  distributed: {strategy: ddp, gpus: 2}\n"
    assert any("several" in e for e in errors(write_config, sweep_config(lr, ddp)))


def test_no_holdout_means_no_eval_loss(write_config) -> None:
    text = sweep_config(
        "parameters:\n  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
    ).replace("split_ratio: 0.1", "split_ratio: 0")
    assert any("needs a holdout split" in e for e in errors(write_config, text))


def test_grid_counts_its_combinations(write_config) -> None:
    text = sweep_config(
        "parameters:\n"
        "  r: {type: categorical, choices: [4, 8]}\n"
        "  warmup_steps: {type: int, low: 0, high: 4, step: 2}\n"
        "sampler: grid\nn_trials: 10\n"
    )
    analysis = analyze(write_config(text))
    assert analysis.resolved.derived["sweep_grid_size"] == 6
    assert any("stops after 6" in d.message for d in analysis.diagnostics)
    sweep = compile_config(write_config(text), "bundle").files["sweep.py"]
    assert "search_space={'fine_tuning.parameters.r': [4, 8]" in sweep.replace('"', "'")


def test_best_config_keeps_the_file_and_drops_the_sweep(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        sweep_config(
            "parameters:\n  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
        ).replace("  base_model: ./model\n", "  base_model: ./model   # the tiny one\n"),
        encoding="utf-8",
    )
    values = {"fine_tuning.training.learning_rate": 0.002, "fine_tuning.parameters.r": 16}
    text = best_config_text(config, values, note="best of 8")
    assert text.startswith("# best of 8\n")
    assert "base_model: ./model   # the tiny one" in text
    assert "learning_rate: 0.002" in text and "r: 16" in text
    assert "sweep:" not in text


def test_a_score_objective_on_a_test_set_needs_no_holdout(write_config, tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text('{"instruction": "a", "output": "b"}\n', "utf-8")
    text = sweep_config(
        "parameters:\n  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
        "objective: rougeL\n",
        extra="  evaluation:\n    metrics: [rouge]\n    test_set: ./test.jsonl\n",
    ).replace("split_ratio: 0.1", "split_ratio: 0")
    compiled = compile_config(write_config(text), "bundle")
    decided = {d.path: d.value for d in compiled.analysis.resolved.decisions}
    assert decided["model_config.sweep.pruner"] == "none"
    # The eval_loss objective still needs the holdout split.
    no_holdout = text.replace("objective: rougeL", "objective: eval_loss")
    assert any("needs a holdout split" in e for e in errors(write_config, no_holdout))


def adapters(adapter_type: str, sweep: str) -> str:
    method = (
        "  fine_tuning:\n    method: adapters\n"
        f"    parameters: {{adapter_type: {adapter_type}, target_modules: [q_proj]}}\n"
    )
    return sweep_config(sweep, extra=method)


@pytest.mark.parametrize(
    ("adapter_type", "name", "attribute"),
    [
        ("loha", "lora_alpha", "alpha"),
        ("lokr", "lora_alpha", "alpha"),
        ("loha", "r", "r"),
        ("oft", "oft_block_size", "oft_block_size"),
        ("oft", "module_dropout", "module_dropout"),
    ],
)
def test_adapter_parameters_target_the_peft_attribute(
    write_config, adapter_type: str, name: str, attribute: str
) -> None:
    text = adapters(adapter_type, f"parameters:\n  {name}: {{type: int, low: 1, high: 4}}\n")
    if name == "module_dropout":
        text = text.replace("type: int, low: 1, high: 4", "type: uniform, low: 0.0, high: 0.2")
    plan = compile_config(write_config(text), "bundle").plan.sweep
    assert plan is not None
    (parameter,) = plan.parameters
    assert parameter.targets[0][1] == attribute


@pytest.mark.parametrize(
    ("adapter_type", "name"),
    [("ia3", "r"), ("ia3", "module_dropout"), ("oft", "r"), ("oft", "lora_alpha")],
)
def test_adapter_parameters_the_type_does_not_pass_are_rejected(
    write_config, adapter_type: str, name: str
) -> None:
    text = adapters(
        adapter_type, f"parameters:\n  {name}: {{type: categorical, choices: [1, 2]}}\n"
    )
    found = errors(write_config, text)
    assert any(f"is not used by adapter_type {adapter_type!r}" in e for e in found), found


def test_a_changed_config_changes_the_fingerprint(write_config) -> None:
    lr = "parameters:\n  r: {type: categorical, choices: [4, 8]}\nn_trials: 4\n"
    first = compile_config(write_config(sweep_config(lr)), "bundle").plan.sweep
    more = compile_config(write_config(sweep_config(lr.replace("4\n", "9\n"))), "b").plan.sweep
    other = compile_config(
        write_config(sweep_config(lr.replace("[4, 8]", "[4, 16]"))), "bundle"
    ).plan.sweep
    maximize = compile_config(
        write_config(sweep_config(lr + "direction: maximize\n")), "bundle"
    ).plan.sweep
    assert first and more and other and maximize
    assert first.fingerprint == more.fingerprint  # more trials: the same study, resumed
    assert first.fingerprint not in (other.fingerprint, maximize.fingerprint)


def test_rules_warn_and_reject(write_config) -> None:
    lr = "  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-2}\n"
    bad = errors(
        write_config,
        sweep_config(
            "parameters:\n"
            "  max_steps: {type: int, low: -1, high: 50}\n"
            "storage: sqlite:///study.db\n"
        ),
    )
    assert any("max_steps" in e and "does not take" in e for e in bad), bad
    assert any("relative SQLite path" in e for e in bad), bad
    infinite = "parameters:\n  weight_decay: {type: uniform, low: 0.0, high: .inf}\n"
    assert any("finite" in e for e in errors(write_config, sweep_config(infinite)))
    warned = analyze(
        write_config(
            sweep_config(
                "parameters:\n" + lr + "  epochs: {type: int, low: 1, high: 3}\n"
                "direction: maximize\nsampler: random\nstartup_trials: 4\n",
                extra="  fine_tuning:\n    training: {max_steps: 20}\n",
            )
        )
    ).diagnostics
    messages = [d.message for d in warned if d.level == "warning"]
    assert any("lower is better" in m for m in messages), messages
    assert any("overrides epochs" in m for m in messages), messages
    assert any("startup_trials is ignored" in m for m in messages), messages


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("postgresql://optuna:hunter2@db/optuna", "password"),
        ("postgresql://optuna@db/optuna?password=hunter2", "password"),
        ("mysql://db/optuna?sslmode=require&PASS=x", "password"),
        ("postgres://optuna@db/optuna", "use postgresql://"),
    ],
)
def test_storage_urls_with_passwords_are_rejected_unshown(
    write_config, storage: str, expected: str
) -> None:
    with pytest.raises(CompileError) as caught:
        analyze(
            write_config(
                sweep_config(
                    f"parameters:\n  r: {{type: categorical, choices: [4, 8]}}\nstorage: {storage!r}\n"
                )
            )
        )
    shown = [(d.message, d.hint or "") for d in caught.value.diagnostics if d.level == "error"]
    assert any(expected in m + h for m, h in shown), shown
    assert not any("hunter2" in m + h for m, h in shown)


PREFERENCE = """\
  fine_tuning:
    method: lora
    objective: {objective}
  dataset:
    source: {{type: local, path: ./pairs.jsonl}}
    preprocessing: {{format: preference}}
    validation: {{split_ratio: 0.1}}
"""


def preference_sweep(objective: str, sweep: str, evaluation: str = "") -> str:
    head = BASE.split("  dataset:")[0] + PREFERENCE.format(objective=objective) + evaluation
    return head + "  sweep:\n" + "".join(f"    {line}\n" for line in sweep.splitlines())


def test_a_preference_objective_sweeps_its_own_settings_on_trls_config(write_config) -> None:
    text = preference_sweep(
        "simpo",
        "parameters:\n"
        "  beta: {type: uniform, low: 1.0, high: 3.0}\n"
        "  simpo_gamma: {type: uniform, low: 0.3, high: 1.0}\n"
        "  learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-3}\n"
        "objective: preference_accuracy\n",
        evaluation="  evaluation: {}\n",
    )
    compiled = compile_config(write_config(text), "bundle")
    sweep = compiled.files["sweep.py"]
    assert '"fine_tuning.preference.beta": (("CPOConfig", "beta"),),' in sweep
    assert '"fine_tuning.preference.simpo_gamma": (("CPOConfig", "simpo_gamma"),),' in sweep
    assert 'objective="preference_accuracy"' in sweep
    decided = {d.path: d.value for d in compiled.analysis.resolved.decisions}
    assert decided["model_config.sweep.direction"] == "maximize"
    assert "trial.configure(args)" in compiled.files["train.py"]  # on the CPOConfig


def test_preference_settings_outside_their_objective_are_refused(write_config) -> None:
    gamma = preference_sweep(
        "dpo", "parameters:\n  simpo_gamma: {type: uniform, low: 0.3, high: 1}\n"
    )
    assert hints(write_config, gamma) == [
        (
            "sweep parameter fine_tuning.preference.simpo_gamma is not a numeric setting of "
            "objective dpo",
            "dpo's: beta, label_smoothing",
        )
    ]
    sft = sweep_config(
        "parameters:\n  fine_tuning.preference.beta: {type: uniform, low: 0.1, high: 1}\n"
    )
    [(message, hint)] = hints(write_config, sft)
    assert "objective sft" in message and "set fine_tuning.objective" in str(hint)


def hints(write_config, text: str) -> list[tuple[str, str | None]]:
    with pytest.raises(CompileError) as caught:
        analyze(write_config(text))
    return [(d.message, d.hint) for d in caught.value.diagnostics if d.level == "error"]


def test_eval_loss_over_a_swept_beta_is_a_warning(write_config) -> None:
    text = preference_sweep("dpo", "parameters:\n  beta: {type: uniform, low: 0.05, high: 0.5}\n")
    warnings = [d.message for d in analyze(write_config(text)).diagnostics if d.level == "warning"]
    assert any("eval_loss is computed with beta itself" in w for w in warnings), warnings
    lr = preference_sweep(
        "dpo", "parameters:\n  learning_rate: {type: uniform, low: 0.001, high: 0.01}\n"
    )
    quiet = analyze(write_config(lr)).diagnostics
    assert not any("yardstick" in d.message for d in quiet)
