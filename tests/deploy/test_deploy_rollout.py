"""A rollout declared on Kubernetes: the candidate's vLLM Deployment and Service, and a Gateway
API HTTPRoute weighting traffic between it and the stable version's by the declared share. The
stable Deployment and Service are the stable version's bundle's: a rollout bundle leaves them
out, so applying it cannot restart the stable pods with the candidate's settings.

The Deployment and Service pass `kubernetes-validate --strict`; the HTTPRoute is checked
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


def variant(tmp_path: Path, rollout: str, name: str, version: str = "1.3.0") -> Path:
    """The example with another rollout block (YAML, indented under deployment; none when
    empty) and version."""
    text = EXAMPLE.read_text().replace("  version: 1.3.0\n", f"  version: {version}\n")
    head = text[: text.index("    rollout:\n")]
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / f"{name}.yaml"
    config.write_text(head + ("    rollout:\n" + rollout if rollout else ""))
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


def test_every_emitted_manifest_but_the_route_passes_strict_kubernetes_validation(bundle):
    manifests = sorted(p for p in (bundle / "k8s").glob("*.yaml") if p.name != "httproute.yaml")
    assert {p.name for p in manifests} >= {"deployment-candidate.yaml", "service-candidate.yaml"}
    done = kubernetes_validate(*manifests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(manifests)


def test_a_rollout_bundle_leaves_the_stable_server_to_the_stable_versions_bundle(tmp_path):
    """The stable Deployment, Service and autoscaler are the stable version's bundle's: this
    bundle's would restart the stable pods with the candidate's settings. The route's stable
    backend is the Service that bundle made, and the candidate's pods are not in it."""
    autoscaled = "    auto_scaling: {min_replicas: 2, max_replicas: 4}\n"
    tail = "      stable_version: 1.2.0\n      gateway: inference-gateway\n"
    rollout = variant(tmp_path, "      strategy: canary\n" + tail, "rollout")
    stable = variant(tmp_path / "stable", "", "stable", version="1.2.0")
    for name in ("deployment.yaml", "service.yaml", "hpa.yaml"):
        assert not (rollout / "k8s" / name).exists(), name
    assert (stable / "k8s/deployment.yaml").is_file()
    route = load(rollout / "k8s/httproute.yaml")
    stable_ref, candidate_ref = route["spec"]["rules"][0]["backendRefs"]
    service = load(stable / "k8s/service.yaml")
    assert (stable_ref["name"], stable_ref["port"]) == (
        service["metadata"]["name"],
        service["spec"]["ports"][0]["port"],
    )
    image = load(stable / "k8s/deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "registry.example.com/ml/support-bot-serve:1.2.0"
    candidate = load(rollout / "k8s/deployment-candidate.yaml")
    candidate_service = load(rollout / "k8s/service-candidate.yaml")
    assert candidate_ref["name"] == candidate_service["metadata"]["name"] == "support-bot-candidate"
    labels = candidate["spec"]["template"]["metadata"]["labels"]
    assert candidate["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert candidate_service["spec"]["selector"].items() <= labels.items()
    assert not service["spec"]["selector"].items() <= labels.items()  # no pod in both
    assert candidate["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # Autoscaled, the rollout bundle still holds no autoscaler (it scales the stable one).
    text = EXAMPLE.read_text().replace("    kubernetes:\n", autoscaled + "    kubernetes:\n", 1)
    (tmp_path / "scaled").mkdir()
    scaled_config = tmp_path / "scaled" / "scaled.yaml"
    scaled_config.write_text(text)
    (tmp_path / "scaled" / "data").mkdir()
    (tmp_path / "scaled" / "data" / "quickstart.jsonl").write_text("{}\n")
    scaled = compiled(scaled_config, tmp_path / "scaled")
    assert not (scaled / "k8s/hpa.yaml").exists()
    assert "hpa.yaml" not in (scaled / "k8s/deployment-candidate.yaml").read_text()


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


def test_each_manifest_names_its_own_files_and_who_owns_the_stable_server(bundle):
    assert "kubectl apply -f k8s/service-candidate.yaml " in _comments(
        bundle / "k8s/service-candidate.yaml"
    )
    candidate = _comments(bundle / "k8s/deployment-candidate.yaml")
    assert "-f k8s/deployment-candidate.yaml -f k8s/service-candidate.yaml" in candidate
    assert "1.3.0 (image built from Dockerfile.serve)" in candidate
    assert "the stable version's\n# bundle made and owns" in candidate


def test_clients_are_told_to_call_through_the_gateway(bundle):
    route = _comments(bundle / "k8s/httproute.yaml")
    assert "Clients call through the Gateway while the rollout runs" in route
    assert "http://support-bot.ml, http://support-bot-candidate.ml) bypasses these weights" in route
    service = _comments(bundle / "k8s/service-candidate.yaml")
    assert "clients call through the Gateway" in service and "bypasses the weights" in service


def test_the_bundle_readme_lists_the_rollout_files_and_what_to_apply(bundle):
    readme = (bundle / "README.md").read_text()
    for name in ROLLOUT_FILES:
        assert f"`{name}`" in readme
    assert "`k8s/deployment.yaml`, `k8s/service.yaml` |" not in readme  # not in this bundle
    apply = "kubectl apply -f k8s/deployment-candidate.yaml -f k8s/service-candidate.yaml -f k8s/httproute.yaml"  # noqa: E501
    assert apply in readme and "kubectl apply -f k8s/`\nwould also start the training Job" in readme
    assert "clients call through the Gateway" in readme


def test_the_promote_recipe_applies_the_new_versions_own_bundle(bundle):
    """Promoting gives the stable Deployment the new version with its own settings, from the
    config compiled without the rollout, not the old settings with the new image."""
    route = _comments(bundle / "k8s/httproute.yaml")
    assert "patch deployment" not in route
    assert "remove deployment.rollout from this config, compile it to another folder" in route
    assert "kubectl apply -f PROMOTED/k8s/deployment.yaml -f PROMOTED/k8s/service.yaml" in route
    assert "kubectl -n ml rollout status deployment/support-bot" in route
    assert "The next step, 50% on the candidate" in route  # a canary's next step, 90/10 -> 50/50


def test_hostnames_keep_the_route_to_its_own_hosts(tmp_path):
    hosts = ["support-bot.example.com", "*.support.example.com"]
    tail = "      stable_version: 1.2.0\n      gateway: inference-gateway\n"
    listed = f"      hostnames: {json.dumps(hosts)}\n"
    out = variant(tmp_path, "      strategy: canary\n" + tail + listed, "hosts")
    route = load(out / "k8s/httproute.yaml")
    assert route_errors(route) == []
    assert route["spec"]["hostnames"] == hosts
    assert "It answers for support-bot.example.com, *.support.example.com only" in _comments(
        out / "k8s/httproute.yaml"
    )
    route["spec"]["hostnames"] = ["Not_A_Host"]
    assert route_errors(route)  # the CRD's own rule, which the config's schema repeats
    with pytest.raises(CompileError) as raised:
        variant(
            tmp_path / "bad",
            "      strategy: canary\n" + tail + '      hostnames: ["Not_A_Host"]\n',
            "x",
        )
    assert any("hostnames" in d.path for d in raised.value.diagnostics)
    plain = load(
        variant(tmp_path / "plain", "      strategy: canary\n" + tail, "plain")
        / "k8s/httproute.yaml"
    )
    assert "hostnames" not in plain["spec"]


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
