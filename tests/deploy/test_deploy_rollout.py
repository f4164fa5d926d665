"""A rollout declared on Kubernetes: the stable and the candidate vLLM Deployments, each with its
Service, and a Gateway API HTTPRoute weighting traffic between them by the declared share.

The Deployments and Services pass `kubernetes-validate --strict`; the HTTPRoute is checked
against the HTTPRoute CRD's schema vendored from a Gateway API release (standard channel)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import compile_config
from ruamel.yaml import YAML
from test_deploy_artifacts import compiled, kubernetes_validate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kubernetes_rollout.yaml"
ROLLOUT_FILES = (
    "k8s/deployment-candidate.yaml",
    "k8s/service-candidate.yaml",
    "k8s/httproute.yaml",
)


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def httproute_schema() -> dict:
    return json.loads(resources.files("lfm.schemas").joinpath("httproute.schema.json").read_text())


def route_errors(route: dict) -> list[str]:
    """What the vendored HTTPRoute schema finds wrong, plus the kind the CRD stands for."""
    validator = jsonschema.Draft7Validator(httproute_schema())
    found = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(route)]
    if (route.get("apiVersion"), route.get("kind")) != (
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
    ):
        found.append("not a gateway.networking.k8s.io/v1 HTTPRoute")
    return found


def variant(tmp_path: Path, rollout: str, name: str) -> Path:
    """The example with another rollout block (YAML, indented under deployment)."""
    text = EXAMPLE.read_text()
    head = text[: text.index("    rollout:\n")]
    config = tmp_path / f"{name}.yaml"
    config.write_text(head + "    rollout:\n" + rollout)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "quickstart.jsonl").write_text("{}\n")
    return compiled(config, tmp_path)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return compiled(EXAMPLE, tmp_path_factory.mktemp("rollout"))


def test_the_vendored_schema_names_its_release_and_licence():
    schema = httproute_schema()
    assert "v1.6.1" in schema["$comment"] and "Apache License 2.0" in schema["$comment"]
    jsonschema.Draft7Validator.check_schema(schema)


def test_the_rollout_manifests_are_emitted_only_for_a_rollout(bundle, tmp_path):
    for rel in ROLLOUT_FILES:
        assert (bundle / rel).is_file(), rel
    plain = compiled(REPO / "examples" / "kubernetes_deployment.yaml", tmp_path)
    assert not any((plain / rel).exists() for rel in ROLLOUT_FILES)


def test_deployments_and_services_pass_strict_kubernetes_validation(bundle):
    manifests = [bundle / "k8s" / name for name in (
        "deployment.yaml", "service.yaml", "deployment-candidate.yaml", "service-candidate.yaml"
    )]  # fmt: skip
    done = kubernetes_validate(*manifests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(manifests)


def test_stable_and_candidate_run_side_by_side_with_disjoint_selectors(bundle):
    stable, candidate = (
        load(bundle / "k8s" / n) for n in ("deployment.yaml", "deployment-candidate.yaml")
    )
    stable_svc, candidate_svc = (
        load(bundle / "k8s" / n) for n in ("service.yaml", "service-candidate.yaml")
    )
    # The stable one keeps the name, selector and image tag of the version serving now.
    assert stable["metadata"]["name"] == stable_svc["metadata"]["name"] == "support-bot"
    assert (
        candidate["metadata"]["name"]
        == candidate_svc["metadata"]["name"]
        == "support-bot-candidate"
    )
    image = lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"]  # noqa: E731
    assert image(stable) == "registry.example.com/ml/support-bot-serve:1.2.0"
    assert image(candidate) == "registry.example.com/ml/support-bot-serve:1.3.0"
    for deployment, service in ((stable, stable_svc), (candidate, candidate_svc)):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert service["spec"]["selector"].items() <= labels.items()
    other = candidate["spec"]["template"]["metadata"]["labels"]
    assert not stable_svc["spec"]["selector"].items() <= other.items()  # no pod in both
    # The same pod security and the same server, but for the image and the labels.
    pods = [d["spec"]["template"]["spec"] for d in (stable, candidate)]
    assert pods[0]["securityContext"] == pods[1]["securityContext"]
    assert pods[0]["securityContext"]["runAsNonRoot"] is True
    containers = [dict(p["containers"][0], image=None) for p in pods]
    assert containers[0] == containers[1]
    assert containers[0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_httproute_splits_by_the_declared_share_and_passes_the_crd_schema(bundle):
    route = load(bundle / "k8s/httproute.yaml")
    assert route_errors(route) == []
    assert route["spec"]["parentRefs"][0]["name"] == "inference-gateway"
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [
        ("support-bot", 90), ("support-bot-candidate", 10)
    ]  # fmt: skip
    assert (
        "kubectl -n ml patch httproute support-bot" in (bundle / "k8s/httproute.yaml").read_text()
    )


@pytest.mark.parametrize(
    ("rollout", "weights"),
    [
        ('      strategy: ab\n      split: "70/30"\n', (70, 30)),
        ("      strategy: blue_green\n", (100, 0)),  # both running, stable takes all
        ("      strategy: canary\n      steps: [2.5, 50, 100]\n", (975, 25)),
    ],
)
def test_each_strategy_starts_at_its_weights(tmp_path, rollout, weights):
    tail = "      stable_version: 1.2.0\n      gateway: inference-gateway\n"
    out = variant(tmp_path, rollout + tail, "bot")
    route = load(out / "k8s/httproute.yaml")
    assert route_errors(route) == []
    assert tuple(r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]) == weights
    assert load(out / "k8s/deployment-candidate.yaml")["spec"]["replicas"] == 2


def test_the_schema_check_can_fail(bundle):
    route = load(bundle / "k8s/httproute.yaml")
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    route["spec"]["rules"][0]["backendRefs"][1]["port"] = "http"
    errors = route_errors(route)
    assert any("-1 is less than the minimum" in e for e in errors)
    assert any("'http' is not of type 'integer'" in e for e in errors)
    assert route_errors({**route, "apiVersion": "gateway.networking.k8s.io/v1beta2"})


def test_a_rollout_on_kubernetes_without_stable_version_or_gateway_does_not_compile(tmp_path):
    text = (
        EXAMPLE.read_text()
        .replace("      stable_version: 1.2.0", "")
        .replace("      gateway: inference-gateway", "")
    )
    config = tmp_path / "incomplete.yaml"
    config.write_text(text)
    with pytest.raises(CompileError) as raised:
        compile_config(config, tmp_path / "out")
    said = " ".join(d.message for d in raised.value.diagnostics)
    assert "needs stable_version" in said and "needs gateway" in said


def _comments(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))


def test_each_manifest_names_its_own_files_and_the_stable_image_is_the_earlier_one(bundle):
    assert "kubectl apply -f k8s/service-candidate.yaml " in _comments(
        bundle / "k8s/service-candidate.yaml"
    )
    candidate = _comments(bundle / "k8s/deployment-candidate.yaml")
    assert "-f k8s/deployment-candidate.yaml -f k8s/service-candidate.yaml" in candidate
    assert "1.3.0 (image built from Dockerfile.serve)" in candidate
    stable = _comments(bundle / "k8s/deployment.yaml")
    assert "(image built from Dockerfile.serve)" not in stable
    assert "built for 1.2.0 earlier (this bundle's Dockerfile.serve builds 1.3.0" in stable


def test_the_bundle_readme_lists_the_rollout_files_and_what_to_apply(bundle):
    readme = (bundle / "README.md").read_text()
    for name in ROLLOUT_FILES:
        assert f"`{name}`" in readme
    apply = "kubectl apply -f k8s/deployment-candidate.yaml -f k8s/service-candidate.yaml -f k8s/httproute.yaml"  # noqa: E501
    assert apply in readme and "kubectl apply -f k8s/`\nwould also start the training Job" in readme


def test_the_promote_recipe_relabels_the_version_and_says_to_recompile(bundle):
    route = _comments(bundle / "k8s/httproute.yaml")
    patch = route.split("patch deployment support-bot --type=json -p '")[1].split("'")[0]
    operations = {op["path"]: op["value"] for op in json.loads(patch)}
    assert operations == {
        "/spec/template/spec/containers/0/image": "registry.example.com/ml/support-bot-serve:1.3.0",
        "/spec/template/metadata/labels/app.kubernetes.io~1version": "1.3.0",
        "/metadata/labels/app.kubernetes.io~1version": "1.3.0",
    }
    deployment = load(bundle / "k8s/deployment.yaml")  # the paths the patch replaces exist
    assert deployment["spec"]["template"]["spec"]["containers"][0]["name"] == "vllm"
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
    assert "Remove deployment.rollout" in route and "recompile" in route
    assert "The next step, 50% on the candidate" in route  # a canary's next step, 90/10 -> 50/50


def test_a_blue_green_route_shows_the_switch(tmp_path):
    tail = "      stable_version: 1.2.0\n      gateway: inference-gateway\n"
    out = variant(tmp_path, "      strategy: blue_green\n" + tail, "bg")
    route = _comments(out / "k8s/httproute.yaml")
    assert "(a blue-green switch)" in route and "(blue_green)" not in route
    switch = route.split("The switch, all traffic to the candidate")[1].splitlines()[1]
    weights = [op["value"] for op in json.loads(switch.split("-p '")[1].rstrip("'"))]
    assert weights == [0, 100]


def test_a_gateway_in_another_namespace_is_a_parent_ref_with_its_namespace(tmp_path):
    for gateway, namespace in (
        ("gateways/inference-gateway", "gateways"),
        ("inference-gateway", None),
    ):
        folder = tmp_path / gateway.replace("/", "-")
        folder.mkdir()
        tail = f"      stable_version: 1.2.0\n      gateway: {gateway}\n"
        out = variant(folder, "      strategy: canary\n" + tail, "bot")
        route = load(out / "k8s/httproute.yaml")
        assert route_errors(route) == []
        parent = route["spec"]["parentRefs"][0]
        assert (parent["name"], parent.get("namespace")) == ("inference-gateway", namespace)
        assert ("allowedRoutes" in _comments(out / "k8s/httproute.yaml")) == bool(namespace)
