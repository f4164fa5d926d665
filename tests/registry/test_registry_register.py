"""register, list and show through the CLI, on a real adapter in a compiled bundle."""

import json
import os
import shutil
from pathlib import Path

from lfm.registry.manifest import sha256_file


def _show(cli, ref):
    return json.loads(cli("show", ref, "--json").output)


def test_register_reads_lineage_from_the_bundle_and_eval_results(cli, bundle_dir, registry_env):
    out = cli(
        "register",
        "--model",
        str(bundle_dir / "output"),
        "--name",
        "medical_qa_specialist",
        "--version",
        "1.2.0",
        "--tag",
        "domain=medical",
    ).output
    assert "registered medical_qa_specialist:1.2.0 (adapter" in out
    shown = _show(cli, "medical_qa_specialist:1.2.0")
    lineage = shown["lineage"]
    lock = json.loads((bundle_dir / "lfm.lock.json").read_text())
    assert lineage["type"] == "adapter"
    assert lineage["method"] == "lora"
    assert lineage["method_params"]["r"] == lock["model_config"]["fine_tuning"]["parameters"]["r"]
    assert lineage["dataset"] == "quickstart"
    data_file = Path(__file__).resolve().parents[2] / "examples" / "data" / "quickstart.jsonl"
    assert lineage["dataset_sha256"] == sha256_file(data_file)
    assert lineage["config_sha256"] == lock["source"]["sha256"]
    assert lineage["bundle_sha256"] == sha256_file(bundle_dir / "MANIFEST.sha256")
    assert lineage["lfm_version"] == lock["lfm_version"]
    assert lineage["libraries"]["peft"]
    assert lineage["base_model"].endswith("tiny-model")  # from adapter_config.json
    assert shown["metrics"]["benchmarks.mmlu.accuracy"] == 0.72
    assert shown["metrics"]["benchmarks.medical_qa.improvement"] == 0.12
    assert shown["metrics"]["rag_integration.latency_p95"] == 150
    assert shown["metrics"]["train.final_loss"] == 1.25
    assert shown["gates"] == {"max_perplexity": True}
    assert shown["tags"] == {"domain": "medical"}
    paths = {f["path"] for f in shown["files"]}
    assert {"adapter_config.json", "adapter_model.safetensors", "metrics.json"} <= paths
    assert not any(p.startswith("checkpoint-") for p in paths)  # resume state is not the model
    assert not any(p.startswith("wandb/") for p in paths)  # nor W&B's local copy of the run
    assert shown["created_by"] == "tester"


def test_lineage_has_the_versions_the_run_recorded(cli, make_adapter_copy, bundle_dir, tmp_path):
    """metrics.json's versions (what the training process had installed) win over the pins."""
    bundle = tmp_path / "b"
    shutil.copytree(bundle_dir, bundle, ignore=shutil.ignore_patterns("output"))
    make_adapter_copy(bundle_dir / "output", bundle / "output", "ran")
    ran = {"python": "3.11.7", "lfm-runtime": "0.1.0", "torch": "9.9.9", "cuda": "12.8"}
    (bundle / "output" / "metrics.json").write_text(
        json.dumps({"final_loss": 1.0, "versions": ran})
    )
    cli("register", "--model", str(bundle / "output"), "--name", "ran", "--version", "1.0.0")
    lineage = _show(cli, "ran:1.0.0")["lineage"]
    assert lineage["libraries"] == ran and lineage["libraries_from"] == "run"


def test_name_and_version_default_to_the_bundles(cli, bundle_dir):
    cli("register", "--model", str(bundle_dir / "output"))
    assert _show(cli, "quickstart:0.1.0")["version"] == "0.1.0"


def test_seed_spelling_with_explicit_lineage(cli, adapter_dir, tmp_path):
    metrics = tmp_path / "eval_results.json"
    metrics.write_text(json.dumps({"perplexity": 12.5}))
    from click.testing import CliRunner
    from lfm.cli import llamafarm

    result = CliRunner().invoke(
        llamafarm,
        [
            "models",
            "register",
            "--name",
            "medical_qa_specialist",
            "--version",
            "1.2.0",
            "--base-model",
            "llama-2-7b",
            "--method",
            "lora",
            "--dataset",
            "medical_qa_v2",
            "--performance-metrics",
            str(metrics),
            "--model",
            str(adapter_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    shown = _show(cli, "medical_qa_specialist:1.2.0")
    assert shown["lineage"]["base_model"] == "llama-2-7b"
    assert shown["lineage"]["dataset"] == "medical_qa_v2"
    assert shown["metrics"] == {"perplexity": 12.5}
    listed = CliRunner().invoke(llamafarm, ["models", "list", "--filter", "base_model=llama-2-7b"])
    assert "medical_qa_specialist" in listed.output


def test_versions_are_immutable(make_adapter_copy, cli, adapter_dir, tmp_path):
    cli("register", "--model", str(adapter_dir), "--name", "m", "--version", "1.0.0")
    again = cli("register", "--model", str(adapter_dir), "--name", "m", "--version", "1.0.0")
    assert "already registered with identical content" in again.output
    other = make_adapter_copy(adapter_dir, tmp_path / "other", "b")
    refused = cli("register", "--model", str(other), "--name", "m", "--version", "1.0.0", expect=1)
    assert "already registered with different content" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert _show(cli, "m:1.0.0")["manifest_sha256"] == _show(cli, "m:latest")["manifest_sha256"]


def test_list_orders_semantically_and_filters(make_adapter_copy, cli, adapter_dir, tmp_path):
    for version, domain in [("1.10.0", "medical"), ("1.9.0", "legal"), ("1.2.0", "medical")]:
        model = make_adapter_copy(adapter_dir, tmp_path / version, version)
        cli(
            "register",
            "--model",
            str(model),
            "--name",
            "m",
            "--version",
            version,
            "--tag",
            f"domain={domain}",
        )
    listed = json.loads(cli("list", "--json").output)
    assert [r["version"] for r in listed] == ["1.2.0", "1.9.0", "1.10.0"]
    medical = json.loads(cli("list", "--filter", "domain=medical", "--json").output)
    assert [r["version"] for r in medical] == ["1.2.0", "1.10.0"]
    assert json.loads(cli("list", "--type", "merged", "--json").output) == []
    assert len(json.loads(cli("list", "--type", "adapters", "--json").output)) == 3
    table = cli("list", "--filter", "domain=legal").output
    assert "1.9.0" in table and "1.10.0" not in table
    assert _show(cli, "m")["version"] == "1.10.0"  # latest is the highest version


def test_identical_files_are_stored_once(
    make_adapter_copy, cli, adapter_dir, tmp_path, registry_env
):
    for i in range(3):
        model = make_adapter_copy(adapter_dir, tmp_path / f"a{i}", str(i))
        cli("register", "--model", str(model), "--name", "m", "--version", f"1.0.{i}")
    blobs = [p for p in (registry_env / "blobs").rglob("*") if p.is_file()]
    # weights + adapter_config shared by all three; one README each
    assert len(blobs) == 2 + 3
    weights = (adapter_dir / "adapter_model.safetensors").stat().st_size
    stored = sum(p.stat().st_size for p in blobs)
    assert stored < 2 * weights


def test_merged_and_full_models_are_typed(cli, adapter_dir, tmp_path):
    base = adapter_dir.parent / "tiny-model"
    cli("register", "--model", str(base), "--name", "tiny", "--version", "1.0.0")
    assert _show(cli, "tiny:1.0.0")["type"] == "full"
    cli(
        "register",
        "--model",
        str(base),
        "--name",
        "tinym",
        "--version",
        "1.0.0",
        "--type",
        "merged",
    )
    assert _show(cli, "tinym:1.0.0")["type"] == "merged"


def test_clean_one_line_errors(cli, adapter_dir, tmp_path):
    cases = [
        (
            ["register", "--model", str(adapter_dir), "--name", "bad name", "--version", "1.0.0"],
            "bad model name",
        ),
        (
            ["register", "--model", str(adapter_dir), "--name", "m", "--version", "1.0"],
            "not a semantic version",
        ),
        (
            ["register", "--model", str(tmp_path / "missing"), "--name", "m", "--version", "1.0.0"],
            "does not exist",
        ),
        (["register", "--model", str(adapter_dir), "--version", "1.0.0"], "missing --name"),
        (
            [
                "register",
                "--model",
                str(adapter_dir),
                "--name",
                "m",
                "--version",
                "1.0.0",
                "--tag",
                "nokey",
            ],
            "bad tag",
        ),
        (["show", "nobody:1.0.0"], "no model named 'nobody'"),
        (["list", "--filter", "what?"], "bad filter"),
        (["list", "--type", "banana"], "bad type"),
    ]
    for args, message in cases:
        result = cli(*args, expect=1)
        assert message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output
    cli("register", "--model", str(adapter_dir), "--name", "m", "--version", "1.0.0")
    assert "has no version 2.0.0 (it has: 1.0.0)" in cli("show", "m:2.0.0", expect=1).output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        "holds no files"
        in cli(
            "register", "--model", str(empty), "--name", "m", "--version", "3.0.0", expect=1
        ).output
    )
    assert not os.listdir(tmp_path / "registry" / "tmp")


def test_a_merged_output_in_a_bundle_is_typed_merged(cli, bundle_dir, adapter_dir, tmp_path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    shutil.copytree(adapter_dir.parent / "tiny-model", bundle / "output" / "merged")
    cli(
        "register",
        "--model",
        str(bundle / "output" / "merged"),
        "--name",
        "mm",
        "--version",
        "1.0.0",
    )
    shown = _show(cli, "mm:1.0.0")
    assert shown["type"] == "merged" and shown["lineage"]["method"] == "lora"
    cli("register", "--model", str(bundle / "output"), "--name", "ad", "--version", "1.0.0")
    assert not any(f["path"].startswith("merged/") for f in _show(cli, "ad:1.0.0")["files"])


def test_registry_commands_import_no_torch_or_mlflow(registry_env, adapter_dir):
    import subprocess
    import sys

    probe = (
        "import sys; from lfm.cli import lfm\n"
        "try:\n    lfm.main(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlflow', 'transformers')))"
    )
    for args in (
        ["register", "--model", str(adapter_dir), "--name", "light", "--version", "1.0.0"],
        ["list"],
        ["pull", "light", "--to", str(registry_env.parent / "pulled")],
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "LFM_REGISTRY": str(registry_env)},
        )
        assert done.stdout.strip().splitlines()[-1] == "[]", (args, done.stdout, done.stderr)


def test_names_and_versions_match_whole(cli, adapter_dir):
    for args in (
        ["--name", "bot\n", "--version", "1.0.0"],
        ["--name", "bot", "--version", "1.0.0\n"],
    ):
        done = cli("register", "--model", str(adapter_dir), *args, expect=1)
        assert "bad " in done.output


def test_what_reaches_the_terminal_is_shown_as_written(cli, adapter_dir, registry_env):
    """A tag is data: control characters are refused at the door, markup is not rendered, and
    what another writer stored (the MLflow backend, an old database) is shown escaped."""
    from lfm.registry.show import printable

    refused = cli("register", "--model", str(adapter_dir), "--name", "t", "--version", "1.0.0",
                  "--tag", "note=\x1b[2Jcleared", expect=1)  # fmt: skip
    assert "bad tag" in refused.output and "control characters" in refused.output
    cli("register", "--model", str(adapter_dir), "--name", "t", "--version", "1.0.0",
        "--tag", "note=[bold red]loud[/]")  # fmt: skip
    assert "note=[bold red]loud[/]" in cli("list").output
    assert printable("a\x1b[31mb\u202ec\nd é") == "a\\x1b[31mb\\u202ec\\x0ad é"


def test_training_leftovers_are_left_out_and_named(cli, make_adapter_copy, adapter_dir, tmp_path):
    """An embedding output's pairs (train.py's training data) and checkpoints at any depth stay
    out of a version, as they stay out of the serving image; register says what it left out."""
    output = make_adapter_copy(adapter_dir, tmp_path / "output", "leftovers")
    for name in ("train_pairs.jsonl", "heldout_pairs.jsonl"):
        (output / name).write_text('{"question": "q", "passage": "p", "document": "d"}\n')
    (output / "checkpoint-6").mkdir()
    (output / "checkpoint-6" / "optimizer.pt").write_bytes(b"resume state")
    (output / "lora" / "checkpoint-2").mkdir(parents=True)  # a nested run's checkpoint too
    (output / "lora" / "checkpoint-2" / "optimizer.pt").write_bytes(b"resume state")
    (output / "lora" / "README.md").write_text("kept\n")
    result = cli("register", "--model", str(output), "--name", "emb", "--version", "1.0.0")
    paths = {f["path"] for f in _show(cli, "emb:1.0.0")["files"]}
    assert {"adapter_config.json", "lora/README.md"} <= paths
    assert not [p for p in paths if p.endswith("_pairs.jsonl") or "checkpoint-" in p], paths
    assert (
        "note: left out of the version: checkpoint-6/, heldout_pairs.jsonl, "
        "lora/checkpoint-2/, train_pairs.jsonl (training leftovers" in result.output
    )
