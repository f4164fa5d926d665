"""The rollout part of the deployment plan (deployment.rollout), for the Kubernetes manifests:
the candidate's vLLM Deployment and Service beside the stable version's (which the previous
version's bundle owns: a rollout bundle does not emit it), and the Gateway API HTTPRoute that
weights traffic between the two. `lfm rollout start --from BUNDLE` does not read this plan: it
reads the lock's resolved model_config (lfm.registry.rollouts.declared_in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Each strategy as the manifests' comments call it.
STRATEGY_WORDS = {"canary": "a canary", "ab": "an A/B test", "blue_green": "a blue-green switch"}


@dataclass(frozen=True)
class ServingVariant:
    """One vLLM Deployment and its Service (a rollout bundle emits the candidate's only; the
    stable one names the objects the route and the promotion recipe point at)."""

    name: str  # the Deployment's and the Service's name
    component: str  # the pods' app.kubernetes.io/component: the two selectors must not overlap
    image: str
    version_label: str
    weight: int  # its backendRef's weight in the HTTPRoute


@dataclass(frozen=True)
class RolloutPlan:
    strategy: str  # canary | ab | blue_green
    steps: tuple[float, ...]  # the candidate's percent of traffic at each step
    stable_version: str | None
    gateway: str | None  # NAME, or NAMESPACE/NAME for a Gateway in another namespace
    hostnames: tuple[str, ...]  # the route's; empty: every host the Gateway's listener takes
    variants: tuple[ServingVariant, ...]  # (stable, candidate) on Kubernetes, else ()

    @property
    def gateway_name(self) -> str | None:
        return self.gateway.rpartition("/")[2] if self.gateway else None

    @property
    def gateway_namespace(self) -> str | None:
        """The Gateway's namespace when it is not the manifests' (parentRefs.namespace)."""
        if not self.gateway:
            return None
        return self.gateway.rpartition("/")[0] or None

    @property
    def hostnames_text(self) -> str:
        return ", ".join(self.hostnames)

    @property
    def strategy_words(self) -> str:
        return STRATEGY_WORDS[self.strategy]

    @property
    def next_weights(self) -> tuple[str, int, int]:
        """What the manifests' first kubectl patch does, and its (stable, candidate) weights:
        a canary's next step, the blue-green switch, another A/B split."""
        if self.strategy == "blue_green":
            return "The switch, all traffic to the candidate", 0, 100
        if self.strategy == "canary" and len(self.steps) > 1:
            stable, candidate = backend_weights("canary", self.steps[1])
            return f"The next step, {self.steps[1]:g}% on the candidate", stable, candidate
        return "Shift traffic (here to half each way)", 50, 50

    @property
    def weights_note(self) -> str:
        """What the HTTPRoute's weights start at, and why, for the manifest's comments."""
        if self.strategy == "blue_green":
            return "blue-green: both run, stable takes everything until the switch"
        if self.strategy == "ab":
            return "an A/B test: the split until it is promoted or aborted"
        first = f"a canary's first step, {self.steps[0]:g}%"
        rest = ", ".join(f"{s:g}%" for s in self.steps[1:])
        return f"{first} (then {rest} by hand, each after its hold)" if rest else first


def backend_weights(strategy: str, first_share: float) -> tuple[int, int]:
    """(stable, candidate) HTTPRoute weights: integers, so a fractional percent (2.5) scales
    both by ten until it is whole; blue-green starts with all traffic on stable."""
    if strategy == "blue_green":
        return 100, 0
    scale = 1
    while first_share * scale != int(first_share * scale) and scale < 10_000:
        scale *= 10
    candidate = round(first_share * scale)
    return 100 * scale - candidate, candidate


def rollout_plan(
    rollout: dict[str, Any],
    *,
    app: str,
    serve_image: str,
    version_label: str,
    stable_image: str | None,
    stable_label: str | None,
    on_kubernetes: bool,
) -> RolloutPlan:
    strategy = rollout["strategy"]
    if strategy == "ab":
        steps: tuple[float, ...] = (float(rollout["split"].split("/")[1]),)
    elif strategy == "canary":
        steps = tuple(float(s) for s in rollout["steps"])
    else:
        steps = (100.0,)
    variants: tuple[ServingVariant, ...] = ()
    stable_version = rollout.get("stable_version")
    if on_kubernetes and stable_image and stable_label:
        stable_weight, candidate_weight = backend_weights(strategy, steps[0])
        variants = (
            ServingVariant(app, "server", stable_image, stable_label, stable_weight),
            ServingVariant(
                f"{app}-candidate", "candidate", serve_image, version_label, candidate_weight
            ),
        )
    return RolloutPlan(
        strategy=strategy,
        steps=steps,
        stable_version=stable_version,
        gateway=rollout.get("gateway"),
        hostnames=tuple(rollout.get("hostnames") or ()),
        variants=variants,
    )
