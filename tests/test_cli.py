"""The CLI, driven in-process the way a user types it."""

import json
from pathlib import Path

from click.testing import CliRunner
from lfm.cli import lfm, llamafarm
from lfm.compiler.schema import load_schema

REPO = Path(__file__).resolve().parent.parent


def run(args, cli=lfm):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_init_writes_a_config_that_validates_and_compiles(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(["init", "my.yaml"])
    assert result.exit_code == 0, result.output
    first, second = Path("my.yaml").read_text().splitlines()[:2]
    assert first == "# yaml-language-server: $schema=.vscode/lfm.schema.json"  # see schema --vscode
    assert second.startswith("# lfm model_config")
    assert run(["validate", "my.yaml"]).exit_code == 0
    assert run(["compile", "my.yaml", "-o", "build/my"]).exit_code == 0
    assert Path("build/my/train.py").is_file()


def test_init_refuses_to_overwrite_without_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my.yaml").write_text("mine\n")
    result = run(["init", "my.yaml"])
    assert result.exit_code == 1 and "pass --force" in result.output
    assert Path("my.yaml").read_text() == "mine\n"
    assert run(["init", "my.yaml", "--force"]).exit_code == 0


def test_compile_check_detects_a_stale_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["init", "my.yaml"])
    assert run(["compile", "my.yaml", "-o", "b"]).exit_code == 0
    check = run(["compile", "my.yaml", "-o", "b", "--check"])
    assert check.exit_code == 0 and "up to date" in check.output
    text = Path("my.yaml").read_text().replace("r: 16", "r: 32")
    Path("my.yaml").write_text(text)
    check = run(["compile", "my.yaml", "-o", "b", "--check"])
    assert check.exit_code == 1
    assert "-        r=16," in check.output and "+        r=32," in check.output
    assert "is stale" in check.stderr


def test_compile_defaults_to_build_and_the_model_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["init", "first.yaml"])
    assert run(["compile", "first.yaml"]).exit_code == 0
    assert Path("build/first/lfm.lock.json").is_file()


def test_compile_refuses_a_user_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["init", "my.yaml"])
    Path("docs").mkdir()
    Path("docs/notes.md").write_text("keep me")
    result = run(["compile", "my.yaml", "-o", "docs"])
    assert result.exit_code == 1 and "not an lfm bundle" in result.stderr
    assert [p.name for p in Path("docs").iterdir()] == ["notes.md"]


def test_validate_reports_errors_with_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("model_config:\n  base_model: m\n  fine_tuning: {method: lorra}\n")
    result = run(["validate", "bad.yaml"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "bad.yaml:3:25: error: 'lorra' is not one of: lora, qlora, dora, full, adapters, "
        "prefix_tuning, prompt_tuning, hybrid_lora_adapter, auto; did you mean 'lora'? "
        "(at model_config.fine_tuning.method)",
        "1 error",
    ]


def test_explain_json_lists_every_decision_with_a_reason(monkeypatch):
    monkeypatch.chdir(REPO)
    result = run(["explain", "examples/seed_unified.json", "--json"])
    payload = json.loads(result.stdout)
    paths = {d["path"]: d for d in payload["decisions"]}
    assert paths["model_config.fine_tuning.parameters.r"]["rule"] == "config"
    assert paths["model_config.fine_tuning.training.seed"]["rule"] == "default"
    assert all(d["reason"] for d in payload["decisions"])


def test_explain_table_names_rules(monkeypatch):
    monkeypatch.chdir(REPO)
    result = run(["explain", "examples/seed_phase2_qlora.json"])
    assert result.exit_code == 0
    assert "normalized into `model_config`" in result.output
    assert "gradient_checkpointing_for_qlora" in result.output


def test_schema_prints_the_schema(tmp_path):
    result = run(["schema"])
    assert json.loads(result.stdout) == load_schema()
    out = tmp_path / "s.json"
    assert run(["schema", "--output", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == load_schema()


def test_the_seed_spelling_answers_too(monkeypatch):
    monkeypatch.chdir(REPO)
    result = run(["models", "validate", "--config", "examples/seed_unified.json"], cli=llamafarm)
    assert result.exit_code == 0 and "valid" in result.stdout
    assert run(["models", "--help"], cli=llamafarm).exit_code == 0


def test_missing_config_is_a_usage_error():
    result = run(["compile"])
    assert result.exit_code == 2 and "missing CONFIG" in result.output
    result = run(["validate", "does-not-exist.yaml"])
    assert result.exit_code == 1 and "config file not found: does-not-exist.yaml" in result.stderr


def test_strict_turns_warnings_into_errors_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("big.yaml").write_text(
        "model_config:\n  base_model: meta-llama/Llama-2-70b-hf\n  resources: {gpu: 1x_a10g}\n"
        "  fine_tuning: {method: full}\n  dataset: {source: {type: hub, path: a/b}}\n"
    )
    assert run(["compile", "big.yaml", "-o", "b"]).exit_code == 0  # a warning only
    result = run(["compile", "big.yaml", "-o", "strict", "--strict"])
    assert result.exit_code == 1 and "error: estimated peak memory" in result.stderr
    assert not Path("strict").exists()


def test_schema_vscode_merges_without_clobbering(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path(".vscode").mkdir()
    Path(".vscode/settings.json").write_text(
        '{"editor.tabSize": 2, "yaml.schemas": {"other.json": ["x.yaml"]}}'
    )
    result = run(["schema", "--vscode"])
    assert result.exit_code == 0, result.output
    settings = json.loads(Path(".vscode/settings.json").read_text())
    assert settings["editor.tabSize"] == 2
    assert settings["yaml.schemas"]["other.json"] == ["x.yaml"]
    assert "*.lfm.yaml" in settings["yaml.schemas"]["./.vscode/lfm.schema.json"]
    assert json.loads(Path(".vscode/lfm.schema.json").read_text()) == load_schema()
    Path(".vscode/settings.json").write_text("{// a comment\n}")
    result = run(["schema", "--vscode"])
    assert result.exit_code == 1 and "add this setting yourself" in result.output


def test_config_reference_is_up_to_date(monkeypatch):
    from lfm.compiler.reference import main

    monkeypatch.chdir(REPO)
    assert main(["--check"]) == 0, "regenerate with: python -m lfm.compiler.reference"


def test_train_with_a_missing_dataset_file_fails_before_writing_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["init", "my.yaml"])
    result = CliRunner().invoke(lfm, ["train", "my.yaml", "--dataset", "data/missing.jsonl"])
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert "data/missing.jsonl" in line and "does not exist" in line
    assert "Traceback" not in result.output
    assert not Path("build").exists()
