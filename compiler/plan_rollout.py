"""The rollout part of the deployment plan (deployment.rollout): what `lfm rollout start --from
BUNDLE` reads back from the lock, and on Kubernetes the two vLLM Deployments, each with its
Service, and the Gateway API HTTPRoute that weights traffic between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The registry's spelling of each strategy (the config's is snake_case, like its other enums).
REGISTRY_STRATEGY = {"canary": "canary", "ab": "ab", "blue_green": "blue-green"}


@dataclass(frozen=True)
class ServingVariant:
    """One vLLM Deployment and its Service."""

    name: str  # the Deployment's and the Service's name
    component: str  # the pods' app.kubernetes.io/component: the two selectors must not overlap
    image: str
    version_label: str
    weight: int  # its backendRef's weight in the HTTPRoute


@dataclass(frozen=True)
class RolloutPlan:
    strategy: str  # canary | ab | blue_green
    steps: tuple[float, ...]  # the candidate's percent of traffic at each step
    hold_s: float
    seed: int
    stable_version: str | None
    gateway: str | None
    variants: tuple[ServingVariant, ...]  # (stable, candidate) on Kubernetes, else ()

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
    rollout: dict[str, Any], *, app: str, serve_image: str, version_label: str, on_kubernetes: bool
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
    if on_kubernetes and stable_version:
        from .plan_deployment import label_value, split_image

        repository, _, _ = split_image(serve_image.partition("@")[0])
        stable_weight, candidate_weight = backend_weights(strategy, steps[0])
        stable_label = label_value(stable_version)
        variants = (
            ServingVariant(app, "server", f"{repository}:{stable_label}", stable_label, stable_weight),
            ServingVariant(f"{app}-candidate", "candidate", serve_image, version_label, candidate_weight),
        )  # fmt: skip
    return RolloutPlan(
        strategy=strategy,
        steps=steps,
        hold_s=float(rollout["hold"]),
        seed=int(rollout["seed"]),
        stable_version=stable_version,
        gateway=rollout.get("gateway"),
        variants=variants,
    )
