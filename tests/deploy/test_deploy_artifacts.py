"""Dockerfiles and Kubernetes manifests, checked by the tools that consume them.

hadolint lints the Dockerfiles (no finding allowed), `kubernetes-validate --strict` checks the
core kinds against the Kubernetes API schema of a pinned version (shipped with the package, so
offline), and the PyTorchJob is checked against the repository's schema of the Kubeflow CRD.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from lfm.compiler.pipeline import compile_config
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.30.0"  # a version every current cluster serves the kinds we emit in
TOOLS = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(TOOLS)) or shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[deploy]')")
    return found


def compiled(config: Path, tmp_path: Path) -> Path:
    out = tmp_path / config.stem
    for rel, text in compile_config(config, out).files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Bundles with every artifact kind: k8s serving + autoscaling, a PyTorchJob, docker."""
    tmp = tmp_path_factory.mktemp("bundles")
    names = (
        "seed_unified.json",
        "seed_phase3_distributed.json",
        "kubernetes_deployment.yaml",
        "sweep_kubernetes.yaml",
        "embedding.yaml",  # task: embedding: vLLM's pooling runner on /v1/embeddings
    )
    return {name: compiled(REPO / "examples" / name, tmp) for name in names}


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *map(str, paths)],
        capture_output=True,
        text=True,
    )


def test_the_expected_artifacts_are_emitted(bundles):
    unified = {
        p.relative_to(bundles["seed_unified.json"]).as_posix()
        for p in bundles["seed_unified.json"].rglob("*")
        if p.is_file()
    }
    assert {"k8s/deployment.yaml", "k8s/service.yaml", "k8s/hpa.yaml", "k8s/job.yaml"} <= unified
    assert {"Dockerfile", "Dockerfile.serve", "k8s/pvc.yaml"} <= unified
    assert "k8s/pytorchjob.yaml" not in unified
    phase3 = bundles["seed_phase3_distributed.json"]
    assert (phase3 / "k8s/pytorchjob.yaml").is_file() and not (phase3 / "k8s/job.yaml").exists()
    assert not (phase3 / "k8s/deployment.yaml").exists()  # no deployment block: no serving


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.serve"])
def test_hadolint_finds_nothing(bundles, dockerfile):
    for bundle in bundles.values():
        path = bundle / dockerfile
        if not path.exists():
            continue
        done = subprocess.run(
            [tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_hadolint_can_fail(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install torch\n")
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True
    )
    assert done.returncode != 0 and "DL3007" in done.stdout


def test_core_kinds_pass_strict_kubernetes_validation(bundles):
    manifests = [
        path
        for bundle in bundles.values()
        for path in sorted((bundle / "k8s").glob("*.yaml"))
        if path.name != "pytorchjob.yaml"
    ]
    assert len(manifests) >= 10
    done = kubernetes_validate(*manifests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(manifests)


def test_strict_validation_rejects_a_broken_manifest(bundles, tmp_path):
    text = (bundles["seed_unified.json"] / "k8s/deployment.yaml").read_text()
    broken = tmp_path / "deployment.yaml"
    broken.write_text(text.replace("containerPort:", "containerPortt:"))
    assert kubernetes_validate(broken).returncode != 0


def pytorchjob_schema() -> dict:
    return json.loads(resources.files("lfm.schemas").joinpath("pytorchjob.schema.json").read_text())


def test_the_pytorchjob_matches_the_crd_schema_and_its_pods_the_core_schema(bundles, tmp_path):
    import jsonschema

    job = YAML(typ="safe").load(bundles["seed_phase3_distributed.json"] / "k8s/pytorchjob.yaml")
    jsonschema.validate(job, pytorchjob_schema())
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] + specs["Worker"]["replicas"] == 2  # the seed's 2 nodes
    for role, spec in specs.items():
        container = spec["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
        assert "--num_processes 16" in container["args"][0]
        # The pod template is a core PodTemplateSpec: check it as a PodTemplate object.
        pod = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"pytorchjob-{role.lower()}"},
            "template": spec["template"],
        }
        path = tmp_path / f"{role}.yaml"
        path.write_text(json.dumps(pod))
        done = kubernetes_validate(path)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_pytorchjob_schema_can_fail(bundles):
    import jsonschema

    job = YAML(typ="safe").load(bundles["seed_phase3_distributed.json"] / "k8s/pytorchjob.yaml")
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, pytorchjob_schema())


def test_vllm_serves_the_trained_adapter_with_a_rank_that_fits(bundles):
    deployment = YAML(typ="safe").load(bundles["seed_unified.json"] / "k8s/deployment.yaml")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    lock = json.loads((bundles["seed_unified.json"] / "lfm.lock.json").read_text())
    rank = lock["model_config"]["fine_tuning"]["parameters"]["r"]
    assert "--enable-lora" in args
    assert int(args[args.index("--max-lora-rank") + 1]) >= rank
    # Runtime adapter loading (`lfm swap-adapter --endpoint`), and a place to put new ones.
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "/adapters" in {m["mountPath"] for m in container["volumeMounts"]}
    assert args[0] == lock["model_config"]["base_model"]
    hpa = YAML(typ="safe").load(bundles["seed_unified.json"] / "k8s/hpa.yaml")
    scaling = lock["model_config"]["deployment"]["auto_scaling"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        scaling["min_replicas"],
        scaling["max_replicas"],
    )
    # The Dockerfile.serve runs the same server command.
    serve = (bundles["seed_unified.json"] / "Dockerfile.serve").read_text()
    assert f"CMD {json.dumps(args)}" in serve


def test_vllm_serves_the_trained_encoder_on_v1_embeddings(bundles):
    """task: embedding: the whole trained folder, loaded by vLLM's pooling runner (not as a
    generator), with its own context length (no --max-model-len from the dataset)."""
    bundle = bundles["embedding.yaml"]
    deployment = YAML(typ="safe").load(bundle / "k8s/deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "/models/embedding"
    assert args[args.index("--runner") + 1] == "pooling"
    assert args[args.index("--served-model-name") + 1] == "embedding"
    assert "--enable-lora" not in args and "--max-model-len" not in args
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in {e["name"] for e in container["env"]}
    serve = (bundle / "Dockerfile.serve").read_text()
    assert f"CMD {json.dumps(args)}" in serve
    assert 'COPY --chown=lfm:lfm ["output/", "/models/embedding/"]' in serve
    # The training image installs the pinned sentence-transformers train.py imports.
    requirements = (bundle / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("sentence-transformers==") for line in requirements)
    assert "COPY requirements.txt ./" in (bundle / "Dockerfile").read_text()
    emitted = {path.name for path in (bundle / "k8s").glob("*.yaml")}
    assert {"job.yaml", "pvc.yaml", "deployment.yaml", "service.yaml"} <= emitted


def test_the_token_is_referenced_never_written(bundles):
    """Every container's HF_TOKEN comes from the Secret; no literal value is in the bundle."""
    containers = []
    for bundle in bundles.values():
        for path in (bundle / "k8s").glob("*.yaml"):
            doc = YAML(typ="safe").load(path)
            templates = [doc["spec"].get("template")] + [
                spec["template"] for spec in doc["spec"].get("pytorchReplicaSpecs", {}).values()
            ]
            containers += [c for t in templates if t for c in t["spec"]["containers"]]
    assert containers
    for container in containers:
        [token] = [e for e in container["env"] if e["name"] == "HF_TOKEN"]
        assert "value" not in token
        assert token["valueFrom"]["secretKeyRef"]["key"] == "token"


def pod_specs(bundles: dict[str, Path]) -> list[dict]:
    """Every pod spec in the bundles' manifests (Job, Deployment, PyTorchJob replicas)."""
    pods = []
    for bundle in bundles.values():
        for path in (bundle / "k8s").glob("*.yaml"):
            doc = YAML(typ="safe").load(path)
            templates = [doc["spec"].get("template")] + [
                spec["template"] for spec in doc["spec"].get("pytorchReplicaSpecs", {}).values()
            ]
            pods += [t["spec"] for t in templates if t]
    return pods


def test_pods_follow_the_restricted_security_profile(bundles):
    """Kubernetes' "restricted" Pod Security Standard, a read-only image, and every place the
    container writes (output, caches, scratch, shared memory) a volume."""
    pods = pod_specs(bundles)
    assert len(pods) >= 4  # a training Job, a PyTorchJob's two roles, a Deployment
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/home/lfm", "/dev/shm"} <= mounts
            resources = container["resources"]
            assert resources["requests"] == resources["limits"]
            assert {"cpu", "memory"} <= set(resources["limits"])


def test_images_are_pinned_and_latest_is_refused(write_config):
    from lfm.compiler.diagnostics import CompileError
    from lfm.compiler.pipeline import analyze

    def compiled_images(image: str) -> tuple[str, str]:
        config = {
            "model_config": {
                "name": "svc",
                "version": "1.2.0",
                "base_model": "org/base",
                "dataset": {"source": {"type": "hub", "path": "org/data"}},
                "deployment": {"target": "kubernetes", "kubernetes": {"image": image}},
            }
        }
        files = compile_config(write_config(json.dumps(config), "c.json"), "b").files
        job = YAML(typ="safe").load(files["k8s/deployment.yaml"])
        served = job["spec"]["template"]["spec"]["containers"][0]["image"]
        return files["Dockerfile"].split("docker build -t ", 1)[1].split(" ", 1)[0], served

    assert compiled_images("reg.example.com:5000/ml/bot") == (
        "reg.example.com:5000/ml/bot:1.2.0",
        "reg.example.com:5000/ml/bot-serve:1.2.0",
    )
    assert compiled_images("reg.example.com:5000/ml/bot:rc1") == (
        "reg.example.com:5000/ml/bot:rc1",  # its own tag, not tagged twice
        "reg.example.com:5000/ml/bot-serve:rc1",
    )
    digest = "reg.example.com/ml/bot@sha256:" + "ab" * 32
    assert compiled_images(digest) == (digest, "reg.example.com/ml/bot-serve:1.2.0")
    with pytest.raises(CompileError, match="not pinned"):
        analyze(write_config(json.dumps({"model_config": {
            "name": "svc", "base_model": "org/base",
            "dataset": {"source": {"type": "hub", "path": "org/data"}},
            "deployment": {"kubernetes": {"image": "ml/bot:latest"}},
        }}), "latest.json"))  # fmt: skip


def test_sweep_workers_are_an_indexed_job_sharing_one_study(bundles):
    bundle = bundles["sweep_kubernetes.yaml"]
    spec = YAML(typ="safe").load(bundle / "k8s/sweep-job.yaml")["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4  # sweep.parallelism
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "sweep.py", "--worker"]  # seeds by the pod's index
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    [storage] = [e for e in container["env"] if e["name"] == "LFM_SWEEP_STORAGE"]
    assert "value" not in storage  # the URL with its password comes from a Secret
    secret = storage["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "support-bot-sweep-storage", "key": "url", "optional": True}
    assert "PASSWORD" not in (bundle / "sweep.py").read_text()
    assert not (bundle / "k8s/job.yaml").read_text().count("sweep.py")  # training: train.py


def test_a_sqlite_sweep_runs_on_one_node(write_config):
    config = (REPO / "examples/sweep_kubernetes.yaml").read_text()
    config = config.replace("storage: postgresql://optuna@optuna-db:5432/optuna", "storage: sqlite")
    config = config.replace("type: local", "type: hub").replace("./data/quickstart.jsonl", "org/qa")
    assert "storage: sqlite" in config and "type: hub" in config
    files = compile_config(write_config(config), "b").files
    spec = YAML(typ="safe").load(files["k8s/sweep-job.yaml"])["spec"]
    assert "completionMode" not in spec and "parallelism" not in spec  # one pod
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "sweep.py"]  # its 4 local workers
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert all(e["name"] != "LFM_SWEEP_STORAGE" for e in container["env"])
    no_cluster = config.split("  deployment:")[0]
    assert "k8s/sweep-job.yaml" not in compile_config(write_config(no_cluster, "c.yaml"), "c").files


def test_secrets_and_caches_stay_out_of_the_image_contexts(bundles):
    """What `docker build` sends, by docker's own reading of the .dockerignore files."""
    pytest.importorskip("docker")
    from docker.utils.build import exclude_paths

    bundle = bundles["kubernetes_deployment.yaml"]
    planted = [
        ".env",
        "sub/.env.production",
        "keys/server.key",
        "tls.pem",
        ".ssh/id_ed25519",
        "__pycache__/train.cpython-311.pyc",
        ".lfm-cache/generations/x.json",
        "output/adapter_model.safetensors",
    ]
    for rel in planted:
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_text("secret")
    for ignore_file, kept in ((".dockerignore", "train.py"), ("Dockerfile.serve.dockerignore", "output/adapter_model.safetensors")):  # fmt: skip
        patterns = (bundle / ignore_file).read_text().splitlines()
        sent = exclude_paths(str(bundle), [p for p in patterns if p and not p.startswith("#")])
        assert kept in sent
        assert not set(planted[:-1]) & sent, ignore_file
