"""`lfm rollout start|status|promote|abort|report`: a canary, an A/B test or a blue-green switch
of a registered adapter version in an environment.

The rollout lives in the registry (lfm.registry.rollouts); servers following NAME@ENV pick it
up at their follow interval, route its share to the candidate, judge its guard rails and roll
it back or promote it. `status` and `report` also ask a server (--endpoint) what it measured.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from .registry import opened_registry, registry_errors, registry_options

ENDPOINT_HELP = "A server following NAME@ENV (e.g. http://127.0.0.1:8000): its per-variant metrics."


def _env_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--env", required=True, help="The environment, e.g. production.")(command)


def _server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--api-key-env",
        default="LFM_API_KEY",
        show_default=True,
        help="The variable holding the server's read key.",
    )(command)
    return click.option("--endpoint", help=ENDPOINT_HELP)(command)


@click.group("rollout")
def rollout_group() -> None:
    """Roll a new adapter version out gradually (canary), side by side (A/B) or at once
    (blue-green), with guard rails that roll it back automatically."""


FROM_HELP = (
    "A compiled bundle whose config declares the rollout (deployment.rollout): its strategy, "
    "steps, hold and guard rails, and NAME:VERSION unless given; the options given here "
    "override it."
)
CANARY_HELP = (
    "Start a canary at this share, e.g. 10% (a bare number is a percent; one below 1 is refused "
    "as ambiguous: write 10% for a tenth, 0.1% for a thousandth)."
)
STEPS_HELP = (
    "A canary's every step, the first included, the last 100 (it promotes), e.g. 5,25,100: "
    "instead of --canary, not with it [default: --canary's PERCENT, 50, 100]."
)
HOLD_HELP = (
    "Seconds each step must hold within its guard rails before the next (the last promotes; "
    "an A/B test ends by hand)."
)
MIN_REQUESTS_HELP = (
    "Candidate requests in the window before anything is judged, and in a step before it "
    "moves on (stable is compared with only when it has as many too; else the error rate is "
    "compared with zero)."
)
SEED_HELP = (
    "Seeds the draw for requests that send no sticky key, to replay one "
    "[default: the rollout's id]."
)


class RegistryDefault(click.Option):
    """An option whose default is the registry's (lfm.registry.rollouts: the Guards dataclass,
    DEFAULT_HOLD_S), read when asked: the registry is an extra, imported inside commands, so
    `lfm --help` stays light and works without it."""

    def __init__(self, *args: Any, registry_default: Callable[[], Any], **kwargs: Any) -> None:
        kwargs["show_default"] = True
        super().__init__(*args, **kwargs)
        self.registry_default = registry_default

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        try:
            return self.registry_default()
        except ImportError:  # no registry extra: the command says so when it runs
            return None


def _hold_default() -> float:
    from lfm.registry.rollouts import DEFAULT_HOLD_S

    return DEFAULT_HOLD_S


def _guard_default(option: str) -> Callable[[], Any]:
    def default() -> Any:
        from lfm.registry.rollouts import guard_default, share_text

        value = guard_default(option)
        # A share is given as a percent ("5%"): a bare 0.05 would be refused as ambiguous.
        return share_text(value) if option == "max_error_rate_increase" else value

    return default


def _guard_option(option: str, kind: Any, help_text: str) -> Callable[..., Any]:
    flag = "--" + option.replace("_", "-")
    return click.option(
        flag,
        cls=RegistryDefault,
        registry_default=_guard_default(option),
        type=kind,
        help=help_text,
    )


@rollout_group.command("start")
@click.argument("reference", metavar="[NAME:VERSION]", required=False)
@_env_option
@click.option(
    "--from", "from_bundle", metavar="BUNDLE", type=click.Path(file_okay=False), help=FROM_HELP
)
@click.option("--canary", metavar="PERCENT", help=CANARY_HELP)
@click.option("--steps", metavar="P1,P2,..", help=STEPS_HELP)
@click.option("--ab", metavar="STABLE/CANDIDATE", help="An A/B test at this split, e.g. 50/50.")
@click.option("--blue-green", is_flag=True, help="Load and warm it, then switch all at once.")
@click.option(
    "--hold",
    cls=RegistryDefault,
    registry_default=_hold_default,
    type=click.FloatRange(0),
    help=HOLD_HELP,
)
@_guard_option("min_requests", click.IntRange(1), MIN_REQUESTS_HELP)
@_guard_option("window", click.FloatRange(1), "Seconds of requests the guard rails look at.")
@_guard_option(
    "max_error_rate_increase",
    str,
    "Roll back when the candidate's error rate exceeds stable's by more.",
)
@_guard_option(
    "max_p95_ratio",
    click.FloatRange(1),
    "Roll back when the candidate's p95 latency is more than this times stable's.",
)
@_guard_option(
    "max_rating_drop",
    click.FloatRange(0, 1),
    "Roll back when its mean feedback rating (0 to 1) is lower by more.",
)
@click.option("--seed", type=int, help=SEED_HELP)
@click.option("--reason", default="", help="Why, for the audit log.")
@registry_options
@registry_errors
def start_cmd(
    reference: str | None,
    env: str,
    from_bundle: str | None,
    canary: str | None,
    steps: str | None,
    ab: str | None,
    blue_green: bool,
    hold: float,
    min_requests: int,
    window: float,
    max_error_rate_increase: str,
    max_p95_ratio: float,
    max_rating_drop: float,
    seed: int | None,
    reason: str,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """Start rolling NAME:VERSION out in ENV against the version ENV points at now. ENV moves
    only when the rollout is promoted.

    With --from BUNDLE the rollout is the one the bundle's config declares, for the bundle's
    model and version unless NAME:VERSION is given; options given here override it."""
    from lfm.registry import rollouts
    from lfm.registry.rollouts import Guards

    declared = rollouts.declared_in(from_bundle) if from_bundle else None
    if reference is None:
        if declared is None:
            raise click.UsageError("give NAME:VERSION, or --from BUNDLE to roll that bundle out")
        reference = declared.reference
    strategies = (("--canary", canary or steps), ("--ab", ab), ("--blue-green", blue_green))
    chosen = [flag for flag, given in strategies if given]
    if not chosen and declared is not None and declared.strategy is None:
        raise click.ClickException(
            f"--from {from_bundle}: its config declares no rollout (deployment.rollout); give "
            "the strategy here (--canary, --ab or --blue-green), or declare one and recompile"
        )
    if len(chosen) > 1 or (not chosen and declared is None):
        raise click.UsageError("choose one strategy: --canary PERCENT, --ab A/B or --blue-green")
    if canary and steps:
        raise click.UsageError(
            f"--canary {canary} and --steps {steps}: give one (--steps lists every step, the "
            "first included)"
        )
    if declared is not None and declared.strategy is not None and not chosen:
        strategy, shares = declared.strategy, declared.steps
    elif canary or steps:
        strategy = rollouts.CANARY
        first = rollouts.parse_share(canary, "--canary") if canary else 0.0
        shares = rollouts.canary_steps(first, steps)
    elif ab:
        strategy, shares = rollouts.AB, (rollouts.ab_split(ab),)
    else:
        strategy, shares = rollouts.BLUE_GREEN, (1.0,)
    increase = rollouts.parse_share(max_error_rate_increase, "--max-error-rate-increase")
    guards = Guards(
        max_error_rate_increase=increase,
        max_p95_ratio=max_p95_ratio,
        max_rating_drop=max_rating_drop,
        min_requests=min_requests,
        window_s=window,
    )
    if declared is not None:  # the bundle's values, but for the options given here
        given = _given_options()
        hold = hold if "hold" in given else declared.hold_s
        seed = seed if "seed" in given else declared.seed
        overridden = {
            field: getattr(guards, field)
            for option, field in rollouts.GUARD_FIELDS.items()
            if option in given
        }
        guards = replace(declared.guards, **overridden)
    # The bundle's stable_version and hashes speak of its own model only, not of another
    # NAME:VERSION given here.
    own = declared if declared is not None and declared.reference == reference else None
    with opened_registry(registry_path, backend, uri) as store:
        if own is not None:
            _warn_if_recompiled(store, own, from_bundle)
        rollout = rollouts.start(
            store,
            reference,
            env,
            strategy,
            shares,
            hold_s=hold,
            guards=guards,
            seed=seed,
            reason=reason,
            expect_stable=own.stable_version if own else None,
        )
    plan = rollouts.plan_text(rollout.steps)
    click.echo(
        f"rollout {rollout.id}: {rollout.strategy} of {rollout.name}@{env} {rollout.stable} -> "
        f"{rollout.candidate} at {plan}; servers following {rollout.name}@{env} start it within "
        "their --follow-interval"
    )


def _warn_if_recompiled(store: Any, declared: Any, bundle: str | None) -> None:
    """A warning, not a refusal, when the registered version's lineage names another config or
    bundle: what is rolled out is the registered version's verified files, and the bundle gives
    only its rollout settings, which are often added or tuned (and recompiled) after training."""
    lineage = store.get(declared.reference, with_files=False).lineage
    differences = declared.differs_from(lineage)
    if differences:
        click.echo(
            f"warning: {declared.reference} was registered from another build than {bundle}: "
            f"its lineage records {'; '.join(differences)}. A rollout serves the registered files "
            "with this bundle's rollout settings; if this bundle is not the one that trained "
            f"it (lfm show {declared.reference} names that one), abort the rollout and start "
            "it from that one",
            err=True,
        )


def _given_options() -> set[str]:
    """The options of the running command given on its command line (or by environment)."""
    ctx = click.get_current_context()
    defaults = (None, click.core.ParameterSource.DEFAULT)
    return {name for name in ctx.params if ctx.get_parameter_source(name) not in defaults}


@rollout_group.command("status")
@click.argument("name")
@_env_option
@_server_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@registry_options
@registry_errors
def status_cmd(
    name: str,
    env: str,
    endpoint: str | None,
    api_key_env: str,
    as_json: bool,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """The rollout of NAME@ENV (running, or the last one), and what a server measured."""
    from lfm.registry import rollouts

    with opened_registry(registry_path, backend, uri) as store:
        store.get(name, with_files=False)  # an unknown name is its own error
        rollout = rollouts.latest(store, name, env)
    if rollout is None:
        raise click.ClickException(f"{name}@{env} has had no rollout")
    ended = rollout.status != rollouts.RUNNING
    # An ended rollout is no server's any more: there is nothing to ask one.
    live = _served(endpoint, api_key_env, rollout.id) if endpoint and not ended else None
    if as_json:
        click.echo(json.dumps({"rollout": rollout.as_dict(), "server": live}, indent=2))
        return
    click.echo(
        f"rollout {rollout.id}: {rollout.strategy} of {name}@{env} {rollout.stable} -> "
        f"{rollout.candidate}: {rollout.status}"
    )
    for line in _ended_lines(rollout) if ended else _running_lines(rollout):
        click.echo(f"  {line}")
    click.echo(f"  guard rails: {_describe_guards(rollout.guards)}")
    click.echo(f"  started {rollout.started_at} by {rollout.who}")
    if rollout.keeps_previous:
        click.echo(
            f"  {rollout.stable} stays loaded beside it: lfm rollout switch-back {name} --env "
            f"{env} goes back to it at once; lfm rollout finish {name} --env {env} unloads it"
        )
    if endpoint and ended:
        click.echo(
            f"  {endpoint}: not asked; the rollout has ended ({rollout.status}), so no server "
            "measures it any more"
        )
    elif endpoint:
        if live is None:
            click.echo(
                f"  {endpoint}: not running this rollout (yet: servers start it within their "
                "--follow-interval)"
            )
        else:
            _print_variants(live["report"]["variants"], rollout)


def _running_lines(rollout: Any) -> list[str]:
    """Where a running rollout stands: its step, how long it has held, what it waits for."""
    from lfm.registry.identity import epoch
    from lfm.registry.rollouts import plan_text, share_text

    share = share_text(rollout.weight)
    if not rollout.auto_promotes:
        by_hand = "until promoted or aborted by hand (an A/B test does not end by itself)"
        return [f"{share} on the candidate {by_hand}"]
    held = max(0.0, time.time() - epoch(rollout.step_started_at))
    left = max(0.0, rollout.hold_s - held)
    last = rollout.step + 1 == len(rollout.steps)
    then = "promotes" if last else f"moves to {share_text(rollout.steps[rollout.step + 1])}"
    return [
        f"steps {plan_text(rollout.steps)}; now step {rollout.step + 1} of "
        f"{len(rollout.steps)} at {share}, since {rollout.step_started_at}",
        f"hold {rollout.hold_s:.0f}s per step: held {held:.0f}s, {left:.0f}s left",
        f"waits for: the hold, and {rollout.guards.min_requests} candidate requests in this "
        f"step (--min-requests), within the guard rails; then it {then}",
    ]


def _ended_lines(rollout: Any) -> list[str]:
    """How an ended rollout ended, where its environment was left, and why."""
    from lfm.registry import rollouts

    where = f"{rollout.name}@{rollout.env}"
    left_at = {
        rollouts.PROMOTED: f"{where} moved to {rollout.candidate}",
        rollouts.SWITCHED_BACK: f"{where} switched back to {rollout.stable}",
    }.get(rollout.status, f"{where} stayed at {rollout.stable}")
    reached = rollouts.share_text(rollout.steps[rollout.step])
    return [
        f"outcome: {rollout.status} at step {rollout.step + 1} of {len(rollout.steps)} "
        f"({reached}); {left_at}",
        f"ended {rollout.ended_at}: {rollout.reason}",
    ]


def _describe_guards(guards: Any) -> str:
    return (
        f"error rate at most {guards.max_error_rate_increase:.1%} above stable's, p95 latency "
        f"at most {guards.max_p95_ratio:g}x, mean rating at most {guards.max_rating_drop:g} "
        f"lower ({guards.min_ratings} ratings each); over the last {guards.window_s:.0f}s, "
        f"once the candidate has {guards.min_requests} requests there"
    )


@rollout_group.command("promote")
@click.argument("name")
@_env_option
@click.option("--reason", default="promoted by hand", show_default=True, help="Why.")
@registry_options
@registry_errors
def promote_cmd(
    name: str,
    env: str,
    reason: str,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """End the rollout of NAME@ENV now: ENV moves to the candidate."""
    _end(name, env, "promoted", reason, registry_path, backend, uri)


@rollout_group.command("abort")
@click.argument("name")
@_env_option
@click.option("--reason", default="aborted by hand", show_default=True, help="Why.")
@registry_options
@registry_errors
def abort_cmd(
    name: str,
    env: str,
    reason: str,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """End the rollout of NAME@ENV now: all traffic back to stable; ENV stays where it was."""
    _end(name, env, "aborted", reason, registry_path, backend, uri)


def _end(name: str, env: str, status: str, reason: str, *registry: str | None) -> None:
    from lfm.registry import rollouts

    with opened_registry(*registry) as store:
        store.get(name, with_files=False)
        rollout = rollouts.running(store, name, env)
        if rollout is None:
            kept = rollouts.keeping(store, name, env)
            hint = (
                f" (the blue-green rollout {kept.id} was promoted and keeps {kept.stable} "
                f"loaded: lfm rollout switch-back {name} --env {env} goes back to it)"
                if kept is not None and status == rollouts.ABORTED
                else ""
            )
            raise click.ClickException(f"no rollout of {name}@{env} is running{hint}")
        ended = rollouts.end(store, rollout, status, reason)
    if ended is None:
        raise click.ClickException(f"the rollout of {name}@{env} ended meanwhile")
    if ended.status != status:  # e.g. ENV was moved by hand: not promoted over that
        raise click.ClickException(f"rollout {ended.id} {ended.status}: {ended.reason}")
    where = ended.candidate if status == "promoted" else f"{ended.stable} (unchanged)"
    click.echo(f"rollout {ended.id} {status}: {name}@{env} -> {where}")


@rollout_group.command("switch-back")
@click.argument("name")
@_env_option
@click.option("--reason", default="switched back by hand", show_default=True, help="Why.")
@registry_options
@registry_errors
def switch_back_cmd(
    name: str,
    env: str,
    reason: str,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """After a blue-green rollout of NAME@ENV was promoted: ENV back to the old version, which
    its servers kept loaded, so they switch back at once (within their --follow-interval),
    without loading anything."""
    from lfm.registry import rollouts

    with opened_registry(registry_path, backend, uri) as store:
        store.get(name, with_files=False)
        back = rollouts.switch_back(store, name, env, reason)
    click.echo(f"rollout {back.id} switched back: {name}@{env} -> {back.stable}")


@rollout_group.command("finish")
@click.argument("name")
@_env_option
@click.option("--reason", default="finished by hand", show_default=True, help="Why.")
@registry_options
@registry_errors
def finish_cmd(
    name: str,
    env: str,
    reason: str,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """After a blue-green rollout of NAME@ENV was promoted: its servers unload the old version
    they kept to switch back to. ENV stays on the new one."""
    from lfm.registry import rollouts

    with opened_registry(registry_path, backend, uri) as store:
        store.get(name, with_files=False)
        done = rollouts.finish(store, name, env, reason)
    stays = f"{name}@{env} stays at {done.candidate}"
    click.echo(f"rollout {done.id} finished: {stays}; servers unload {done.stable}")


@rollout_group.command("report")
@click.argument("name")
@_env_option
@_server_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@registry_options
@registry_errors
def report_cmd(
    name: str,
    env: str,
    endpoint: str | None,
    api_key_env: str,
    as_json: bool,
    registry_path: str | None,
    backend: str | None,
    uri: str | None,
) -> None:
    """The A/B report of the rollout running in NAME@ENV, from a server's measurements: each
    variant's metrics with 95% confidence intervals, and which is ahead."""
    from lfm.registry import rollouts

    if not endpoint:
        raise click.UsageError("--endpoint is required: the report is what a server measured")
    with opened_registry(registry_path, backend, uri) as store:
        store.get(name, with_files=False)
        rollout = rollouts.running(store, name, env)
    if rollout is None:
        raise click.ClickException(f"no rollout of {name}@{env} is running")
    live = _served(endpoint, api_key_env, rollout.id)
    if live is None:
        raise click.ClickException(f"{endpoint} is not running rollout {rollout.id} (yet)")
    found = live["report"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    _print_variants(found["variants"], rollout)
    for metric, verdict in found["comparisons"].items():
        if verdict.get("note"):  # alike on both sides, e.g. no errors on either
            click.echo(f"  {metric}: no difference ({verdict['note']})")
            continue
        if verdict["difference"] is None:
            click.echo(f"  {metric}: not enough data")
            continue
        low, high = verdict["ci95"]
        who = verdict["ahead"] or "neither (not significant yet)"
        click.echo(
            f"  {metric}: stable - candidate = {verdict['difference']:+.4g} "
            f"[{low:+.4g}, {high:+.4g}]; ahead: {who}"
        )
    click.echo(f"ahead overall: {found['ahead'] or 'neither yet'} ({found['method']})")


VARIANTS_HEADER = (
    "  VARIANT    VERSION   REQUESTS  ERRORS  ERROR RATE [95% CI]    P50     P95    TOKENS  RATING"
)


def _print_variants(variants: dict[str, Any], rollout: Any) -> None:
    click.echo(VARIANTS_HEADER)
    for variant, v in variants.items():
        version = rollout.candidate if variant == "candidate" else rollout.stable
        low, high = v["error_rate_ci95"]
        rating = f"{v['rating_mean']:.2f} ({v['ratings']})" if v["rating_mean"] is not None else "-"
        click.echo(
            f"  {variant:<10} {version:<9} {v['requests']:>8}  {v['errors']:>6}  "
            f"{v['error_rate']:>6.1%} [{low:.1%}, {high:.1%}]  {_seconds(v['latency_p50_s'])}  "
            f"{_seconds(v['latency_p95_s'])}  {v['tokens']:>7}  {rating}"
        )


def _seconds(value: float | None) -> str:
    return f"{value:6.3f}s" if value is not None else "     - "


def _served(endpoint: str, api_key_env: str, rollout_id: int) -> dict[str, Any] | None:
    """The server's view of rollout ``rollout_id`` (GET /v1/rollouts), None if it has none."""
    key = os.environ.get(api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(endpoint.rstrip("/") + "/v1/rollouts", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the user's URL)
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{endpoint} refused: {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot read {endpoint}: {why}") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise _unexpected(endpoint, "no list of rollouts under 'data'")
    for live in data:
        if not isinstance(live, dict) or not isinstance(live.get("rollout"), dict):
            raise _unexpected(endpoint, "a rollout that is not an object")
        if live["rollout"].get("id") == rollout_id:
            _check_report(live.get("report"), endpoint)
            return live
    return None


def _unexpected(endpoint: str, what: str) -> click.ClickException:
    return click.ClickException(
        f"{endpoint} answered GET /v1/rollouts in an unexpected shape ({what}): is it an "
        "lfm serve of this lfm version?"
    )


_NUMBER = (int, float)
_MAYBE_NUMBER = (int, float, type(None))
_VARIANT_FIELDS = {
    "requests": _NUMBER,
    "errors": _NUMBER,
    "error_rate": _NUMBER,
    "tokens": _NUMBER,
    "ratings": _NUMBER,
    "latency_p50_s": _MAYBE_NUMBER,
    "latency_p95_s": _MAYBE_NUMBER,
    "rating_mean": _MAYBE_NUMBER,
}


def _check_report(report: Any, endpoint: str) -> None:
    """What `status` and `report` print from a server's report, checked before printing."""
    if not isinstance(report, dict):
        raise _unexpected(endpoint, "its rollout has no report")
    variants, comparisons = report.get("variants"), report.get("comparisons")
    if not isinstance(variants, dict) or not variants:
        raise _unexpected(endpoint, "its report has no variants")
    for name, v in variants.items():
        if not isinstance(v, dict):
            raise _unexpected(endpoint, f"variant {name!r} is not an object")
        for key, kinds in _VARIANT_FIELDS.items():
            if isinstance(v.get(key), bool) or not isinstance(v.get(key), kinds):
                raise _unexpected(endpoint, f"variant {name!r} has no number {key!r}")
        if not _pair(v.get("error_rate_ci95")):
            raise _unexpected(endpoint, f"variant {name!r} has no 'error_rate_ci95' interval")
    if not isinstance(comparisons, dict):
        raise _unexpected(endpoint, "its report has no comparisons")
    for metric, verdict in comparisons.items():
        if not isinstance(verdict, dict) or not isinstance(verdict.get("ahead"), str | None):
            raise _unexpected(endpoint, f"comparison {metric!r} is not a verdict")
        difference = verdict.get("difference")
        if difference is not None and not (
            isinstance(difference, _NUMBER) and _pair(verdict.get("ci95"))
        ):
            raise _unexpected(endpoint, f"comparison {metric!r} has no difference and interval")
    if not isinstance(report.get("ahead"), str | None) or not isinstance(report.get("method"), str):
        raise _unexpected(endpoint, "its report has no 'ahead' and 'method'")


def _pair(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, _NUMBER) and not isinstance(x, bool) for x in value)
    )
