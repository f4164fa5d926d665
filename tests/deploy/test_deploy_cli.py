"""`lfm deploy`: a trained adapter -> Dockerfile.serve + k8s manifests that the tools accept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.deploy import DeployError, resolve_model_reference
from ruamel.yaml import YAML

TOOLS = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(TOOLS)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[deploy]')")
    return found


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    """A LoRA adapter (rank 12) saved by peft on a tiny local model, as training leaves it."""
    pytest.importorskip("peft")
    from lfm.runtime.tiny import build_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("deploy")
    base = build_tiny_model(root / "tiny-model", pretrain_steps=0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=12, target_modules=["q_proj"])
    )
    out = root / "bundle" / "output"
    model.save_pretrained(out)
    (out / "checkpoint-5").mkdir()  # checkpoints stay out of the image
    return out


def deploy(*args: str, version: str | None = "0.1.0"):
    """`lfm deploy ARGS --version VERSION` (the test adapter has no lock file to name one)."""
    more = ("--version", version) if version else ()
    return CliRunner().invoke(lfm, ["deploy", *args, *more], catch_exceptions=False)


def test_deploy_writes_manifests_the_tools_accept(adapter, tmp_path):
    out = tmp_path / "out"
    args = ("--model", str(adapter), "--target", "kubernetes", "--replicas", "3", "-o", str(out))
    unversioned = deploy(*args, version=None)  # no lock beside it: nothing names a version
    assert unversioned.exit_code == 1 and "pass --version" in unversioned.output
    assert not out.exists()
    done = deploy(*args, version="0.3.0")
    assert done.exit_code == 0, done.output
    written = [p.read_text() for p in out.rglob("*") if p.is_file() and p.suffix != ".safetensors"]
    assert not any(":latest" in text for text in written)  # an image is never tagged latest
    assert sorted(p.name for p in (out / "k8s").iterdir()) == ["deployment.yaml", "service.yaml"]
    assert (out / "model/adapter_config.json").is_file() and not (
        out / "model/checkpoint-5"
    ).exists()
    assert (out / "base/config.json").is_file()  # the local base model travels in the image

    deployment = YAML(typ="safe").load(out / "k8s/deployment.yaml")
    assert deployment["spec"]["replicas"] == 3
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("-serve:0.3.0")
    args = container["args"]
    assert args[0] == "/models/base" and "--enable-lora" in args
    assert args[args.index("--max-lora-rank") + 1] == "16"  # the smallest vLLM rank >= 12
    assert args[args.index("--lora-modules") + 1].endswith("=/models/output")

    checked = subprocess.run(
        [
            tool("kubernetes-validate"),
            "--strict",
            "-k",
            "1.30.0",
            *map(str, (out / "k8s").iterdir()),
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    linted = subprocess.run(
        [tool("hadolint"), "--no-color", str(out / "Dockerfile.serve")],
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout


def test_the_training_config_supplies_name_version_and_autoscaling(adapter, tmp_path):
    lock = {
        "model_config": {
            "name": "support_bot",
            "version": "1.2.0",
            "dataset": {"preprocessing": {"max_length": 512}},
            "deployment": {
                "resources": {"gpu": "1x_a100", "memory": "32Gi"},
                "auto_scaling": {"min_replicas": 1, "max_replicas": 4, "cpu_threshold": 60},
            },
        },
        "decisions": [
            {"path": "model_config.deployment.auto_scaling.max_replicas", "rule": "config"}
        ],
    }
    (adapter.parent / "lfm.lock.json").write_text(json.dumps(lock))
    try:
        out = tmp_path / "out"
        assert deploy("--model", str(adapter), "-o", str(out), version=None).exit_code == 0
    finally:
        (adapter.parent / "lfm.lock.json").unlink()
    hpa = YAML(typ="safe").load(out / "k8s/hpa.yaml")
    assert (hpa["spec"]["maxReplicas"], hpa["metadata"]["name"]) == (4, "support-bot")
    container = YAML(typ="safe").load(out / "k8s/deployment.yaml")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == "lfm/support-bot-serve:1.2.0"
    # Requests and limits alike: the autoscaler measures against the CPU request.
    resources = {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": 1}
    assert container["resources"] == {"requests": resources, "limits": resources}


def test_docker_target_writes_only_the_image(adapter, tmp_path):
    out = tmp_path / "out"
    assert deploy("--model", str(adapter), "--target", "docker", "-o", str(out)).exit_code == 0
    assert (out / "Dockerfile.serve").is_file() and not (out / "k8s").exists()


@pytest.mark.parametrize("reference", ["support_bot:1.2.0", "support_bot@production"])
def test_unknown_registry_references_are_one_line_errors(reference, tmp_path, monkeypatch):
    pytest.importorskip("semver")
    monkeypatch.setenv("LFM_REGISTRY", str(tmp_path / "registry"))
    with pytest.raises(DeployError, match="support_bot"):
        resolve_model_reference(reference)
    done = deploy("--model", reference)
    assert done.exit_code == 1 and "support_bot" in done.output
    assert "Traceback" not in done.output


def test_deploy_a_registered_version_by_environment(adapter, tmp_path, monkeypatch):
    """name@production resolves through the registry to verified files, served under its name."""
    pytest.importorskip("semver")
    monkeypatch.setenv("LFM_REGISTRY", str(tmp_path / "registry"))
    runner = CliRunner()
    for args in (
        ["register", "--model", str(adapter), "--name", "support_bot", "--version", "2.0.1"],
        ["promote", "support_bot:2.0.1", "--env", "production"],
    ):
        done = runner.invoke(lfm, args, catch_exceptions=False)
        assert done.exit_code == 0, done.output
    out = tmp_path / "out"
    done = deploy(
        "--model", "support_bot@production", "--target", "kubernetes", "-o", str(out), version=None
    )
    assert done.exit_code == 0, done.output
    assert "support_bot 2.0.1" in done.output
    served = json.loads((out / "model/adapter_config.json").read_text())
    assert served["r"] == 12
    assert "--max-lora-rank" in (out / "k8s/deployment.yaml").read_text()


def test_apply_without_a_cluster_says_so(adapter, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    out = tmp_path / "out"
    done = deploy("--model", str(adapter), "-o", str(out), "--apply")
    assert done.exit_code == 1
    assert "--apply:" in done.output and f"kubectl apply -f {out}/k8s" in done.output
    assert (out / "k8s/deployment.yaml").is_file()  # written before giving up


def test_bad_references_and_existing_output_are_one_line_errors(adapter, tmp_path):
    (tmp_path / "empty").mkdir()
    for args, message in (
        (["--model", str(tmp_path / "nope")], "no such directory"),
        (["--model", str(tmp_path / "empty")], "neither an adapter"),
        # The folder holding the model is never an output, --force or not.
        (["--model", str(adapter), "-o", str(adapter.parent)], "holds it"),
        (["--model", str(adapter), "-o", str(adapter.parent), "--force"], "holds it"),
    ):
        done = deploy(*args)
        assert done.exit_code == 1 and message in done.output, done.output


def test_a_whole_model_is_served_by_name(adapter, tmp_path):
    """A merged or fully fine-tuned model (config.json, no adapter): vLLM loads it directly."""
    model = adapter.parent.parent / "tiny-model"
    out = tmp_path / "out"
    assert deploy("--model", str(model), "-o", str(out)).exit_code == 0
    args = YAML(typ="safe").load(out / "k8s/deployment.yaml")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[0] == "/models/tiny-model" and "--enable-lora" not in args
    assert args[args.index("--served-model-name") + 1] == "tiny-model"
    assert (out / "model/config.json").is_file() and not (out / "base").exists()


def test_an_embedding_model_is_served_by_the_pooling_runner(adapter, tmp_path):
    """A sentence-transformers folder (modules.json, as task: embedding writes it): vLLM's
    pooling runner, at the model's own sequence limit; a generative model gets neither."""
    model = tmp_path / "retriever"
    shutil.copytree(adapter.parent.parent / "tiny-model", model)
    (model / "modules.json").write_text("[]")
    out = tmp_path / "out"
    assert deploy("--model", str(model), "-o", str(out)).exit_code == 0
    args = YAML(typ="safe").load(out / "k8s/deployment.yaml")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[args.index("--runner") + 1] == "pooling" and "--max-model-len" not in args
    generative = tmp_path / "generative"
    base = adapter.parent.parent / "tiny-model"
    assert deploy("--model", str(base), "-o", str(generative)).exit_code == 0
    assert "--runner" not in (generative / "k8s/deployment.yaml").read_text()


def test_training_leftovers_stay_out_of_the_image_as_the_dockerignore_says(adapter, tmp_path):
    """An embedding output's pairs (the training data) and a checkpoint, at any depth, are not
    copied into the build context, as Dockerfile.serve.dockerignore keeps them out of a compiled
    bundle's image; the output says what was left out. The model's own files are copied."""
    from lfm.runtime.embedding import LEFTOVER_DIRS, LEFTOVER_FILES

    model = tmp_path / "retriever"
    shutil.copytree(adapter.parent.parent / "tiny-model", model)
    (model / "modules.json").write_text("[]")
    for name in ("train_pairs.jsonl", "heldout_pairs.jsonl", "1_Pooling/extra_pairs.jsonl"):
        (model / name).parent.mkdir(exist_ok=True)
        (model / name).write_text('{"question": "q", "passage": "p", "document": "d"}\n')
    (model / "checkpoint-6").mkdir()
    (model / "checkpoint-6" / "optimizer.pt").write_bytes(b"resume state")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        lfm, ["deploy", "--model", str(model), "-o", str(out), "--version", "0.1.0"]
    )
    assert result.exit_code == 0, result.output
    copied = {p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*")}
    assert "modules.json" in copied and "config.json" in copied
    assert not [p for p in copied if p.endswith("_pairs.jsonl") or "checkpoint-" in p]
    assert "note: left out of the image's model/: 1_Pooling/extra_pairs.jsonl, checkpoint-6/, " in (
        result.output
    )
    # The same patterns as the compiled serving image's .dockerignore.
    from lfm.compiler.render import environment

    ignore = environment().get_template("Dockerfile.serve.dockerignore.jinja").render()
    lines = ignore.splitlines()
    assert all(f"**/{pattern}/" in lines for pattern in LEFTOVER_DIRS)
    assert all(f"**/{pattern}" in lines for pattern in LEFTOVER_FILES)


def test_a_base_model_not_on_this_machine_is_an_error_and_base_names_another(adapter, tmp_path):
    """The adapter was trained on another machine: its base path is not here. The deployment
    is not written (no image without the base, no host path in a manifest) until --base says
    where the base model is."""
    moved = tmp_path / "adapter"
    shutil.copytree(adapter, moved)
    settings = json.loads((moved / "adapter_config.json").read_text())
    gone = tmp_path / "elsewhere" / "tiny-model"
    settings["base_model_name_or_path"] = str(gone)
    (moved / "adapter_config.json").write_text(json.dumps(settings))
    out = tmp_path / "out"

    done = deploy("--model", str(moved), "-o", str(out))
    assert done.exit_code == 1
    assert f"base model {gone} is not on this machine" in done.output and "--base" in done.output
    assert not out.exists()

    base = adapter.parent.parent / "tiny-model"
    done = deploy("--model", str(moved), "--base", str(base), "-o", str(out))
    assert done.exit_code == 0, done.output
    assert (out / "base/config.json").is_file()
    for written in (out / "Dockerfile.serve", *(out / "k8s").iterdir()):
        text = written.read_text()
        assert str(tmp_path) not in text and str(base) not in text, written

    whole = deploy("--model", str(base), "--base", "org/other", "-o", str(tmp_path / "o2"))
    assert whole.exit_code == 1 and "--base is for an adapter" in whole.output


def test_the_serving_image_is_the_schemas_one_vllm_pin(adapter, tmp_path):
    from lfm.compiler.schema import default_of

    image = default_of("deployment", "serving", "image")
    assert image.startswith("vllm/vllm-openai:v")
    out = tmp_path / "out"
    assert deploy("--model", str(adapter), "--target", "docker", "-o", str(out)).exit_code == 0
    assert f"FROM {image}\n" in (out / "Dockerfile.serve").read_text()


def test_force_replaces_only_what_lfm_wrote(adapter, tmp_path, monkeypatch):
    """--force never empties the current directory, the model's folder or a user's files."""
    out = tmp_path / "out"
    assert deploy("--model", str(adapter), "--target", "docker", "-o", str(out)).exit_code == 0
    again = deploy("--model", str(adapter), "--target", "docker", "-o", str(out), "--force")
    assert again.exit_code == 0, again.output  # its own deployment: replaced
    (out / "notes.txt").write_text("mine")
    (out / "Dockerfile.serve").write_text("FROM edited\n")
    refused = deploy("--model", str(adapter), "--target", "docker", "-o", str(out), "--force")
    assert refused.exit_code == 1
    assert "Dockerfile.serve, notes.txt" in refused.output and "did not write" in refused.output
    assert (out / "notes.txt").read_text() == "mine"

    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "keep.txt").write_text("mine")
    monkeypatch.chdir(workdir)
    here = deploy("--model", str(adapter), "-o", ".", "--force")
    assert here.exit_code == 1 and "current directory" in here.output
    assert (workdir / "keep.txt").read_text() == "mine"

    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)
    linked = deploy("--model", str(adapter), "-o", str(link), "--force")
    assert linked.exit_code == 1 and "symbolic link" in linked.output
    assert (out / "notes.txt").exists()


def test_export_force_never_removes_the_adapter_or_a_users_files(adapter, tmp_path, monkeypatch):
    from lfm.runtime.errors import RuntimeConfigError
    from lfm.runtime.export import merge_adapter

    base = adapter.parent.parent / "tiny-model"
    for output in (adapter, adapter.parent):  # the adapter, and the folder holding it
        with pytest.raises(RuntimeConfigError, match="holds it"):
            merge_adapter(adapter, output, base_model=str(base), overwrite=True, verify=False)
    assert (adapter / "adapter_config.json").is_file()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeConfigError, match="current directory"):
        merge_adapter(adapter, ".", base_model=str(base), overwrite=True, verify=False)

    merged = tmp_path / "merged"
    merge_adapter(adapter, merged, base_model=str(base), verify=False)
    merge_adapter(adapter, merged, base_model=str(base), overwrite=True, verify=False)
    (merged / "README.md").write_text("my notes")
    with pytest.raises(RuntimeConfigError, match=r"did not write \(README\.md\)"):
        merge_adapter(adapter, merged, base_model=str(base), overwrite=True, verify=False)
    assert (merged / "README.md").read_text() == "my notes"


def test_links_and_empty_folders_are_not_lfms_to_remove(adapter, tmp_path):
    out = tmp_path / "out"
    assert deploy("--model", str(adapter), "--target", "docker", "-o", str(out)).exit_code == 0
    (tmp_path / "elsewhere").mkdir()
    (out / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (out / "empty").mkdir()
    refused = deploy("--model", str(adapter), "--target", "docker", "-o", str(out), "--force")
    assert refused.exit_code == 1 and "empty/, linked" in refused.output
    assert (out / "linked").is_symlink() and (out / "empty").is_dir()


def test_no_output_inside_the_model_it_copies(adapter, tmp_path):
    done = deploy("--model", str(adapter), "-o", str(adapter / "deploy"))
    assert done.exit_code == 1 and "inside" in done.output
    assert not (adapter / "deploy").exists()


def test_export_never_replaces_the_base_it_merges_into(adapter, tmp_path):
    from lfm.runtime.errors import RuntimeConfigError
    from lfm.runtime.export import merge_adapter

    base = adapter.parent.parent / "tiny-model"
    with pytest.raises(RuntimeConfigError, match="holds it"):
        merge_adapter(adapter, base, base_model=str(base), overwrite=True, verify=False)
    assert (base / "config.json").is_file()
