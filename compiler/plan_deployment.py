"""The deployment part of the plan: images, the training Job/PyTorchJob and the vLLM server.

Templates for the Dockerfiles and `k8s/` read only these dataclasses. `serving_plan` is shared
with `lfm deploy`, which builds the same serving artifacts for an already trained model.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .plan_distributed import DistributedPlan
from .plan_rollout import RolloutPlan, ServingVariant, rollout_plan
from .requirements import constraints
from .rules.data import DOCUMENT_TYPES
from .schema import default_of

APP_DIR = "/app"  # the bundle's place in the training image
MODELS_DIR = "/models"  # the served model's place in the serving image
HF_CACHE = "/home/lfm/.cache/huggingface"
# The CUDA build of the official PyTorch images for each torch minor version; the Dockerfile
# takes it as a build argument, so another base is one `--build-arg BASE_IMAGE=...` away.
TORCH_CUDA = {"2.4": "12.4", "2.5": "12.4", "2.6": "12.6"}
DEFAULT_CUDA = "12.8"


@dataclass(frozen=True)
class KubePlan:
    namespace: str
    app: str  # a DNS-1123 name for every object, from the config's name
    version_label: str
    image: str  # training image, name:tag
    serve_image: str
    node_selector: tuple[tuple[str, str], ...]
    storage: str
    storage_class: str | None
    hf_token_secret: str


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    cpu_threshold: int


@dataclass(frozen=True)
class ServingPlan:
    vllm_image: str
    port: int
    model: str  # what vLLM loads: a hub id or a directory in the image
    served_name: str
    lora_modules: tuple[tuple[str, str], ...]  # (adapter name, directory in the image)
    max_lora_rank: int | None
    max_model_len: int | None
    copies: tuple[tuple[str, str], ...]  # (source in the build context, directory in the image)
    replicas: int
    cpu: str  # each replica's request and limit
    memory: str
    gpus: int
    autoscaling: Autoscaling | None
    # vLLM's --runner: "pooling" serves an embedding model (task: embedding) on /v1/embeddings;
    # None lets vLLM pick (a generator for the models lfm trains with task: generation).
    runner: str | None = None

    @property
    def args(self) -> tuple[str, ...]:
        """`vllm serve` arguments, identical in Dockerfile.serve and the Deployment."""
        args = [self.model, "--host", "0.0.0.0", "--port", str(self.port)]
        if self.runner:
            args += ["--runner", self.runner]
        if self.lora_modules:
            args += ["--enable-lora", "--max-lora-rank", str(self.max_lora_rank)]
            args += ["--lora-modules", *(f"{name}={path}" for name, path in self.lora_modules)]
        else:
            args += ["--served-model-name", self.served_name]
        if self.max_model_len:
            args += ["--max-model-len", str(self.max_model_len)]
        return tuple(args)


@dataclass(frozen=True)
class TrainingJobPlan:
    kind: str  # "Job" (one node) | "PyTorchJob" (several)
    output_mount: str  # where the claim is mounted: the bundle's output directory in the image
    nodes: int
    gpus_per_node: int
    rendezvous_port: int
    cpu: str  # each pod's request and limit
    memory: str
    alert_webhook_secret: str | None  # the Secret holding LFM_ALERT_WEBHOOK_URL, when alerts post
    dataset_mount: str | None  # where train.py builds a documents dataset (the image is read-only)

    @property
    def launch_script(self) -> str:
        """Each PyTorchJob pod's command: the operator sets RANK, MASTER_ADDR and MASTER_PORT."""
        return (
            "exec accelerate launch --config_file accelerate.yaml "
            f"--num_machines {self.nodes} --num_processes {self.nodes * self.gpus_per_node} "
            '--machine_rank "$RANK" --main_process_ip "$MASTER_ADDR" '
            '--main_process_port "$MASTER_PORT" train.py'
        )


@dataclass(frozen=True)
class DeploymentPlan:
    target: str
    kube: KubePlan
    training_image: bool  # emit the training Dockerfile
    base_image: str  # the training image's base
    output_in_bundle: str | None  # the output folder, kept out of the training image
    training_job: TrainingJobPlan | None
    serving: ServingPlan | None
    rollout: RolloutPlan | None = None  # deployment.rollout, when declared

    @property
    def kubernetes(self) -> bool:
        return self.target == "kubernetes"

    @property
    def variants(self) -> tuple[ServingVariant, ...]:
        """The vLLM Deployments, each with its Service: one, or a rollout's stable and
        candidate (the stable one keeps the name a bundle without a rollout gives it; a rollout
        bundle emits the candidate's alone)."""
        if self.rollout is not None and self.rollout.variants:
            return self.rollout.variants
        kube = self.kube
        return (ServingVariant(kube.app, "server", kube.serve_image, kube.version_label, 100),)


def dns_name(text: str) -> str:
    """A Kubernetes object name (DNS-1123 label) from a config name: `My_Model` -> `my-model`."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "lfm-model"


def alert_webhook_secret(name: str) -> str:
    """The Secret a training pod reads the alert webhook's URL from (key `webhook-url`)."""
    return f"{dns_name(name)}-alerts"


def label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-._")
    return value or "unversioned"


IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """An image reference -> (repository, tag, digest): the tag is after the last ':' of the
    last path part (a registry's port is in the first), the digest after '@'."""
    named, _, digest = reference.partition("@")
    head, slash, last = named.rpartition("/")
    name, colon, tag = last.partition(":")
    return f"{head}{slash}{name}", tag if colon else None, digest or None


def image_names(reference: str, version_tag: str) -> tuple[str, str]:
    """(training image, serving image): the reference with its own tag or digest as written,
    else tagged with the version; the serving image is the repository + `-serve`, same tag."""
    repository, tag, digest = split_image(reference)
    serve = f"{repository}-serve:{tag or version_tag}"
    if digest:
        return reference, serve
    return f"{repository}:{tag or version_tag}", serve


def pod_resources(gpus: int, cpu: str | None, memory: str | None) -> tuple[str, str]:
    """A pod's CPU and memory (request = limit): what the config says, else 4 CPUs and 32Gi per
    GPU (data loading, tokenization, and the weights' copy in host memory while they load)."""
    return cpu or str(4 * gpus if gpus else 2), memory or f"{32 * gpus if gpus else 8}Gi"


def gpu_count(spec: str | None, default: int = 1) -> int:
    if not spec:
        return default
    if spec == "none":
        return 0
    head = spec.split("x_", 1)[0]
    return int(head) if "x_" in spec and head.isdigit() else 1


def base_image() -> str:
    torch = constraints()["torch"].split("==", 1)[1]
    cuda = TORCH_CUDA.get(".".join(torch.split(".")[:2]), DEFAULT_CUDA)
    return f"pytorch/pytorch:{torch}-cuda{cuda}-cudnn9-runtime"


def kube_plan(cfg: dict[str, Any]) -> KubePlan:
    k = cfg.get("deployment", {}).get("kubernetes", {})
    app = dns_name(cfg["name"])
    tag = label_value(cfg["version"])
    image, serve_image = image_names(k.get("image") or f"lfm/{app}", tag)
    return KubePlan(
        namespace=k.get("namespace", "default"),
        app=app,
        version_label=tag,
        image=image,
        serve_image=serve_image,
        node_selector=tuple(sorted(k.get("node_selector", {}).items())),
        storage=k.get("storage", "100Gi"),
        storage_class=k.get("storage_class"),
        hf_token_secret=k.get("hf_token_secret", "hf-token"),
    )


def serving_plan(
    deployment: dict[str, Any],
    *,
    kind: str,
    name: str,
    model: str,
    lora_modules: tuple[tuple[str, str], ...],
    max_lora_rank: int | None,
    copies: tuple[tuple[str, str], ...],
    max_model_len: int | None,
    autoscaling: bool,
    runner: str | None = None,
) -> ServingPlan:
    serving = deployment.get("serving", {})
    resources = deployment.get("resources", {})
    scaling = deployment.get("auto_scaling") if autoscaling else None
    gpus = gpu_count(resources.get("gpu"))
    cpu, memory = pod_resources(gpus, resources.get("cpu"), resources.get("memory"))
    return ServingPlan(
        vllm_image=serving.get("image", default_of("deployment", "serving", "image")),
        port=serving.get("port", 8000),
        model=model,
        served_name=dns_name(name),
        lora_modules=lora_modules if kind == "lora" else (),
        max_lora_rank=max_lora_rank if kind == "lora" else None,
        max_model_len=serving.get("max_model_len", max_model_len),
        copies=copies,
        replicas=deployment.get("replicas", 1),
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        autoscaling=Autoscaling(
            scaling.get("min_replicas", 1),
            scaling.get("max_replicas", 1),
            scaling.get("cpu_threshold", 80),
        )
        if scaling
        else None,
        runner=runner,
    )


def deployment_plan(
    cfg: dict[str, Any],
    derived: dict[str, Any],
    distributed: DistributedPlan,
    output_dir: str,
    output_in_bundle: str | None,
    base_model: str,
) -> DeploymentPlan:
    deployment = cfg.get("deployment", {})
    target = deployment.get("target", "local")
    on_kubernetes = distributed.launcher == "kubernetes"
    kube = kube_plan(cfg)
    return DeploymentPlan(
        target=target,
        kube=kube,
        training_image=on_kubernetes or target in ("docker", "kubernetes"),
        base_image=base_image(),
        output_in_bundle=output_in_bundle,
        training_job=_training_job(cfg, derived, distributed, output_dir)
        if on_kubernetes
        else None,
        serving=_bundle_serving(cfg, derived, output_dir, base_model)
        if "serving_kind" in derived
        else None,
        rollout=_rollout(cfg, derived, kube) if derived.get("rollout") else None,
    )


def _rollout(cfg: dict[str, Any], derived: dict[str, Any], kube: KubePlan) -> RolloutPlan:
    rollout = cfg["deployment"]["rollout"]
    on_kubernetes = cfg["deployment"].get("target") == "kubernetes" and "serving_kind" in derived
    stable = rollout.get("stable_version")
    # The stable version's serving image: this one's repository, tagged with that version.
    repository, _, _ = split_image(kube.serve_image.partition("@")[0])
    stable_label = label_value(stable) if stable else None
    return rollout_plan(
        rollout,
        app=kube.app,
        serve_image=kube.serve_image,
        version_label=kube.version_label,
        stable_image=f"{repository}:{stable_label}" if stable_label else None,
        stable_label=stable_label,
        on_kubernetes=on_kubernetes,
    )


def _training_job(
    cfg: dict[str, Any], derived: dict[str, Any], distributed: DistributedPlan, output_dir: str
) -> TrainingJobPlan:
    mount = output_dir if output_dir.startswith("/") else posixpath.join(APP_DIR, output_dir)
    resources = cfg.get("resources", {})
    cpu, memory = pod_resources(
        distributed.gpus_per_node, resources.get("cpu"), resources.get("memory")
    )
    return TrainingJobPlan(
        kind="PyTorchJob" if distributed.num_machines > 1 else "Job",
        output_mount=posixpath.normpath(mount.replace("~", "/home/lfm", 1)),
        nodes=distributed.num_machines,
        gpus_per_node=distributed.gpus_per_node,
        rendezvous_port=distributed.rendezvous_port,
        cpu=cpu,
        memory=memory,
        alert_webhook_secret=alert_webhook_secret(cfg["name"])
        if derived.get("alert_webhook")
        else None,
        dataset_mount=posixpath.join(APP_DIR, ".lfm-dataset")
        if cfg["dataset"]["source"]["type"] in DOCUMENT_TYPES
        else None,
    )


def _bundle_serving(
    cfg: dict[str, Any], derived: dict[str, Any], output_dir: str, base_model: str
) -> ServingPlan:
    kind = derived["serving_kind"]
    params = cfg["fine_tuning"].get("parameters", {})
    output = posixpath.normpath(output_dir)
    if kind == "lora":
        hybrid = cfg["fine_tuning"]["method"] == "hybrid_lora_adapter"
        source = posixpath.join(output, "lora") if hybrid else output
        adapter = dns_name(cfg["name"])
        target = f"{MODELS_DIR}/{adapter}"
        return serving_plan(
            cfg.get("deployment", {}),
            kind=kind,
            name=cfg["name"],
            model=base_model,
            lora_modules=((adapter, target),),
            max_lora_rank=derived["max_lora_rank"],
            copies=((source, target),),
            max_model_len=cfg["dataset"]["preprocessing"]["max_length"],
            autoscaling=bool(derived.get("autoscaling")),
        )
    source = posixpath.join(output, "merged") if params.get("merge_on_save") else output
    target = f"{MODELS_DIR}/{dns_name(cfg['name'])}"
    runner = derived.get("serving_runner")
    # An embedding model's context is its own (sentence-transformers' max_seq_length, which
    # vLLM reads from the folder); the dataset's max_length is a generation setting.
    max_model_len = None if runner == "pooling" else cfg["dataset"]["preprocessing"]["max_length"]
    return serving_plan(
        cfg.get("deployment", {}),
        kind=kind,
        name=cfg["name"],
        model=target,
        lora_modules=(),
        max_lora_rank=None,
        copies=((source, target),),
        max_model_len=max_model_len,
        autoscaling=bool(derived.get("autoscaling")),
        runner=runner,
    )
