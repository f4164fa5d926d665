"""Rollouts: a candidate version served beside an environment's stable one, for a share of its
traffic (canary, A/B, blue-green), until it is promoted, rolled back or aborted.

The state is shared by `lfm rollout` and every server that follows ``NAME@ENV``: one row per
rollout in the embedded registry's database (table ``rollouts``, created on first use), each
change committed with its audit entry. Servers read it at their follow interval, as they read
promotions. A rollout never moves the environment until it is promoted; a rollback or an abort
leaves it where it was.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import db
from .environments import PROMOTE, ROLLBACK_TO, Guard, check_known_env, check_promotion_gates
from .errors import RegistryError
from .identity import now, who
from .references import Reference, parse_reference

if TYPE_CHECKING:
    from .backend import Registry
    from .embedded import EmbeddedRegistry

CANARY, AB, BLUE_GREEN = "canary", "ab", "blue-green"
STRATEGIES = (CANARY, AB, BLUE_GREEN)
RUNNING, PROMOTED, ROLLED_BACK, ABORTED = "running", "promoted", "rolled-back", "aborted"
SWITCHED_BACK = "switched-back"  # a promoted blue-green, switched back to its old version
ADAPTER = "adapter"  # the only registry type (lineage.TYPES) a server rolls out

# A step's hold when none is given: `lfm rollout start --hold`'s default, and a bundle's whose
# lock holds none. The guard rails' defaults are :class:`Guards`' own.
DEFAULT_HOLD_S = 300.0

TABLE = """
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    env TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Guards:
    """When a candidate is rolled back: compared with the stable variant over the last
    ``window_s`` seconds, once the candidate has ``min_requests`` there (its error rate and latency
    are compared with stable's only when stable has as many too; else its error rate with
    zero). Ratings are judged with ``min_ratings`` on each side."""

    max_error_rate_increase: float = 0.05  # candidate's error rate minus stable's
    max_p95_ratio: float = 2.0  # candidate's p95 latency over stable's
    max_rating_drop: float = 0.1  # stable's mean rating (0 to 1) minus candidate's
    min_requests: int = 20
    min_ratings: int = 10
    window_s: float = 300.0


@dataclass(frozen=True)
class Rollout:
    id: int
    name: str
    env: str
    strategy: str
    stable: str  # the version the environment points at
    candidate: str
    steps: tuple[float, ...]  # the candidate's share of traffic at each step, in (0, 1]
    step: int
    hold_s: float  # how long a step holds (guards passing) before the next; the last promotes
    guards: Guards
    status: str
    started_at: str
    step_started_at: str
    who: str
    # The draw for requests without a sticky key: `lfm rollout start --seed`, else the
    # rollout's id, so two rollouts do not route the same keyless sequence.
    seed: int = 0
    ended_at: str | None = None
    reason: str = ""
    history: tuple[dict[str, Any], ...] = field(default=())
    # A promoted blue-green keeps its old version loaded beside the new one, for an instant
    # `switch_back`, until it is finished (`finish`): True until then.
    keeps_previous: bool = False

    @property
    def weight(self) -> float:
        """The candidate's share of traffic now (0 once ended)."""
        return self.steps[self.step] if self.status == RUNNING else 0.0

    @property
    def auto_promotes(self) -> bool:
        """An A/B test ends by hand; a canary or blue-green promotes once its last step held."""
        return self.strategy != AB

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        data["history"] = list(self.history)
        data["weight"] = self.weight
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Rollout:
        """A stored row, as any lfm version wrote it: keys this version does not know (a newer
        lfm's, or the derived ``weight``) are left out, so a replica not yet upgraded keeps
        reading the rollouts a newer `lfm rollout` writes."""
        known = _known(Rollout, data)
        known["steps"] = tuple(known["steps"])
        known["guards"] = Guards(**_known(Guards, known["guards"]))
        known["history"] = tuple(known.get("history", ()))
        return Rollout(**known)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data``'s keys that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def check_steps(strategy: str, steps: tuple[float, ...]) -> tuple[float, ...]:
    if strategy not in STRATEGIES:
        raise RegistryError(f"unknown strategy {strategy!r}: use {', '.join(STRATEGIES)}")
    if not steps or any(not 0 < s <= 1 for s in steps):
        raise RegistryError("every step's share must be more than 0% and at most 100%")
    if list(steps) != sorted(steps):
        raise RegistryError("a rollout's steps must not go down (e.g. 10% -> 50% -> 100%)")
    if strategy == CANARY and steps[-1] != 1.0:
        # The last step promotes: one below 100% would move the environment to a version
        # that never took all the traffic.
        shown = ",".join(f"{s * 100:g}" for s in steps)
        raise RegistryError(
            f"a canary's last step must be 100% (it promotes there), not "
            f"{share_text(steps[-1])}: e.g. --steps {shown},100"
        )
    return steps


def _embedded(store: Registry) -> EmbeddedRegistry:
    from .embedded import EmbeddedRegistry

    if not isinstance(store, EmbeddedRegistry):
        raise RegistryError(
            "rollouts are kept in the embedded registry; the MLflow backend does not hold them"
        )
    return store


def _conn(store: Registry) -> sqlite3.Connection:
    conn = _embedded(store).conn
    conn.execute(TABLE)  # idempotent: older registries gain the table on first use
    return conn


def start(
    store: Registry,
    reference: str,
    env: str,
    strategy: str,
    steps: tuple[float, ...],
    *,
    hold_s: float = DEFAULT_HOLD_S,
    guards: Guards | None = None,
    seed: int | None = None,
    reason: str = "",
    expect_stable: str | None = None,
) -> Rollout:
    """Begin rolling NAME:VERSION out in ``env`` against the version ``env`` points at.
    ``seed``: the keyless draw's; None seeds it with the rollout's id. ``expect_stable``: the
    stable version the caller planned against (a bundle's ``stable_version``); refused when
    ``env`` points elsewhere."""
    registry = _embedded(store)
    check_known_env(env, registry.environments)
    check_steps(strategy, steps)
    ref = parse_reference(reference)
    if ref.version is None or ref.env:
        raise RegistryError(f"name the candidate as NAME:VERSION, not {reference!r}")
    candidate = registry.get(ref, with_files=False)
    try:
        stable = registry.get(Reference(ref.name, env=env), with_files=False).version
    except RegistryError:
        raise RegistryError(
            f"{ref.name}@{env} points at no version: promote a first one (lfm promote "
            f"{ref.name}:VERSION --env {env}); a rollout needs a stable version to compare with"
        ) from None
    if candidate.type != ADAPTER:
        raise RegistryError(_not_an_adapter(ref.name, candidate.version, candidate.type))
    if stable == candidate.version:
        raise RegistryError(f"{ref.name}@{env} already points at {stable}: nothing to roll out")
    if expect_stable is not None and stable != expect_stable:
        raise RegistryError(_not_the_declared_stable(ref.name, env, stable, expect_stable))
    try:  # a rollout ends by promoting: refuse now one that could never be promoted
        check_promotion_gates(candidate, env, False, registry.gated_environments)
    except RegistryError as exc:
        raise RegistryError(
            f"cannot roll {ref.name}:{candidate.version} out in {env}: it could never be "
            f"promoted there ({exc})"
        ) from None
    at, user = now(), who()
    rollout = Rollout(
        id=0,
        name=ref.name,
        env=env,
        strategy=strategy,
        stable=stable,
        candidate=candidate.version,
        steps=steps,
        step=0,
        hold_s=hold_s,
        guards=guards or Guards(),
        status=RUNNING,
        started_at=at,
        step_started_at=at,
        who=user,
        seed=seed or 0,
        reason=reason,
    )
    with db.transaction(_conn(store)) as conn:
        running = _running(conn, ref.name, env)
        if running is not None:
            raise RegistryError(
                f"a {running.strategy} rollout of {ref.name}@{env} is running already "
                f"({running.stable} -> {running.candidate}): promote or abort it first"
            )
        kept = _keeping(conn, ref.name, env)
        if kept is not None:
            raise RegistryError(
                f"the blue-green rollout {kept.id} of {ref.name}@{env} keeps {kept.stable} loaded "
                f"to switch back to: finish it first (lfm rollout finish {ref.name} --env {env}) "
                "or switch back (lfm rollout switch-back)"
            )
        cursor = conn.execute(
            "INSERT INTO rollouts (name, env, status, data) VALUES (?, ?, ?, ?)",
            (ref.name, env, RUNNING, "{}"),
        )
        ident = int(cursor.lastrowid or 0)
        rollout = replace(rollout, id=ident, seed=ident if seed is None else seed)
        _save(conn, rollout)
        _audit(conn, "rollout-start", rollout, at, user, _describe(rollout) + _why(reason))
    return rollout


def _not_an_adapter(name: str, version: str, kind: str) -> str:
    # Servers run rollouts only for what they follow as NAME@ENV, and `lfm serve` follows
    # adapters only (--adapter NAME=NAME@ENV): a rollout of anything else would never advance.
    return (
        f"cannot roll {name}:{version} out: the registry records it as {kind!r}, and lfm serve "
        "runs rollouts for LoRA adapters only (it follows an environment with --adapter "
        f"NAME={name}@ENV); move the environment with lfm promote {name}:{version} --env ENV"
    )


def _not_the_declared_stable(name: str, env: str, stable: str, declared: str) -> str:
    return (
        f"{name}@{env} points at {stable}, but the rollout declares stable_version {declared}: "
        f"to roll out against {stable}, set stable_version: {stable} and recompile (on "
        f"Kubernetes its manifests run that version's image); to roll out against {declared}, "
        f"move {name}@{env} back first (lfm promote {name}:{declared} --env {env})"
    )


def _describe(rollout: Rollout) -> str:
    shares = plan_text(rollout.steps)
    return f"{rollout.strategy} {rollout.stable} -> {rollout.candidate} at {shares}"


def _why(reason: str) -> str:
    return f"; {reason}" if reason else ""


def running(store: Registry, name: str, env: str) -> Rollout | None:
    """The rollout running in NAME@ENV, or None."""
    return _running(_conn(store), name, env)


def latest(store: Registry, name: str, env: str) -> Rollout | None:
    """The newest rollout of NAME@ENV, running or ended, or None."""
    return _latest(_conn(store), name, env)


def _latest(conn: sqlite3.Connection, name: str, env: str) -> Rollout | None:
    row = conn.execute(
        "SELECT data FROM rollouts WHERE name = ? AND env = ? ORDER BY id DESC LIMIT 1",
        (name, env),
    ).fetchone()
    return Rollout.from_dict(json.loads(row["data"])) if row else None


def recent(store: Registry, limit: int = 50) -> list[Rollout]:
    """The newest ``limit`` rollouts of every model and environment, newest first."""
    rows = (
        _conn(store).execute("SELECT data FROM rollouts ORDER BY id DESC LIMIT ?", (limit,))
    ).fetchall()
    return [Rollout.from_dict(json.loads(row["data"])) for row in rows]


def _running(conn: sqlite3.Connection, name: str, env: str) -> Rollout | None:
    row = conn.execute(
        "SELECT data FROM rollouts WHERE name = ? AND env = ? AND status = ?",
        (name, env, RUNNING),
    ).fetchone()
    return Rollout.from_dict(json.loads(row["data"])) if row else None


def advance(store: Registry, rollout: Rollout, detail: str) -> Rollout | None:
    """The next step, if ``rollout`` is still running at the step the caller saw (several
    servers may judge the same rollout: the first one's step counts, the others' are None)."""
    at = now()
    with db.transaction(_conn(store)) as conn:
        current = _by_id(conn, rollout.id)
        if current.status != RUNNING or current.step != rollout.step:
            return None
        record = {"at": at, "step": current.step + 1, "detail": detail}
        moved = replace(
            current, step=current.step + 1, step_started_at=at, history=(*current.history, record)
        )
        _save(conn, moved)
        text = f"{moved.candidate} now takes {share_text(moved.weight)}; {detail}"
        _audit(conn, "rollout-step", moved, at, who(), text)
    return moved


def end(
    store: Registry, rollout: Rollout, status: str, reason: str, *, by: str | None = None
) -> Rollout | None:
    """Promote (the environment moves to the candidate), roll back or abort (it stays): None
    when the rollout had ended already. The rollout's end, the environment's move and their
    audit lines commit together. A promotion the environment's gates refuse raises
    :class:`RegistryError` and changes nothing; one whose environment no longer points at the
    rollout's stable version (moved by hand meanwhile) is not made: the rollout ends aborted,
    saying so, and the environment stays where it was moved."""
    if status not in (PROMOTED, ROLLED_BACK, ABORTED):
        raise ValueError(status)
    registry = _embedded(store)
    if status == PROMOTED:  # the same rules as every way into an environment
        record = registry.get(Reference(rollout.name, rollout.candidate), with_files=False)
        check_promotion_gates(record, rollout.env, False, registry.gated_environments)
    at, user = now(), by or who()
    with db.transaction(_conn(store)) as conn:
        current = _by_id(conn, rollout.id)
        if current.status != RUNNING:
            return None
        if status == PROMOTED:
            pointer = _pointer(conn, current.name, current.env)
            if pointer != current.stable:
                status = ABORTED
                reason = (
                    f"not promoted: {current.name}@{current.env} was moved to "
                    f"{pointer or 'no version'} meanwhile (the rollout was against "
                    f"{current.stable}); it stays there. Asked to promote: {reason}"
                )
        keeps = status == PROMOTED and current.strategy == BLUE_GREEN
        ended = replace(current, status=status, ended_at=at, reason=reason, keeps_previous=keeps)
        _save(conn, ended)
        action = {PROMOTED: "rollout-promote", ROLLED_BACK: "rollout-rollback"}
        text = f"{current.stable} -> {current.candidate} {status}: {reason}"
        _audit(conn, action.get(status, "rollout-abort"), ended, at, user, text)
        if status == PROMOTED:  # the environment moves in the same commit, from stable only
            why = f"rollout {ended.id}: {reason}"
            only_from = Guard(ended.stable, None)
            registry._move_in(conn, ended.name, ended.env, PROMOTE, ended.candidate, why, only_from)
    return ended


def keeping(store: Registry, name: str, env: str) -> Rollout | None:
    """The promoted blue-green rollout of NAME@ENV that keeps its old version loaded, or None."""
    return _keeping(_conn(store), name, env)


def _keeping(conn: sqlite3.Connection, name: str, env: str) -> Rollout | None:
    newest = _latest(conn, name, env)
    return newest if newest is not None and newest.keeps_previous else None


def switch_back(store: Registry, name: str, env: str, reason: str) -> Rollout:
    """A promoted blue-green back to its old version, which its servers kept loaded: the
    environment moves back (from the candidate only), the servers swap the two at their next
    look, without loading anything."""
    registry = _embedded(store)
    at, user = now(), who()
    with db.transaction(_conn(store)) as conn:
        kept = _keeping(conn, name, env)
        if kept is None:
            raise RegistryError(_nothing_kept(conn, name, env))
        pointer = _pointer(conn, name, env)
        if pointer != kept.candidate:
            raise RegistryError(
                f"{name}@{env} points at {pointer or 'no version'}, not at {kept.candidate} "
                f"that rollout {kept.id} switched to: it was moved meanwhile; finish the rollout "
                f"(lfm rollout finish {name} --env {env}) and move it by hand"
            )
        back = replace(kept, status=SWITCHED_BACK, keeps_previous=False, reason=reason)
        _save(conn, back)
        text = f"{kept.candidate} -> {kept.stable} switched back: {reason}"
        _audit(conn, "rollout-switch-back", back, at, user, text)
        why, only_from = f"rollout {kept.id}: {reason}", Guard(kept.candidate, None)
        registry._move_in(conn, name, env, ROLLBACK_TO, kept.stable, why, only_from)
    return back


def finish(store: Registry, name: str, env: str, reason: str) -> Rollout:
    """A promoted blue-green's old version may go: its servers unload it at their next look."""
    at, user = now(), who()
    with db.transaction(_conn(store)) as conn:
        kept = _keeping(conn, name, env)
        if kept is None:
            raise RegistryError(_nothing_kept(conn, name, env))
        done = replace(kept, keeps_previous=False)
        _save(conn, done)
        text = f"{kept.stable} unloaded, {kept.candidate} stays: {reason}"
        _audit(conn, "rollout-finish", done, at, user, text)
    return done


def _nothing_kept(conn: sqlite3.Connection, name: str, env: str) -> str:
    running = _running(conn, name, env)
    if running is not None:
        return (
            f"the {running.strategy} rollout {running.id} of {name}@{env} is still running: "
            "abort it to go back to its stable version"
        )
    return f"no promoted blue-green rollout of {name}@{env} keeps an old version loaded"


def _pointer(conn: sqlite3.Connection, name: str, env: str) -> str | None:
    row = conn.execute(
        "SELECT version FROM env_pointers WHERE name = ? AND env = ?", (name, env)
    ).fetchone()
    return row["version"] if row else None


def _by_id(conn: sqlite3.Connection, ident: int) -> Rollout:
    row = conn.execute("SELECT data FROM rollouts WHERE id = ?", (ident,)).fetchone()
    if row is None:
        raise RegistryError(f"no rollout {ident} in this registry")
    return Rollout.from_dict(json.loads(row["data"]))


def _save(conn: sqlite3.Connection, rollout: Rollout) -> None:
    conn.execute(
        "UPDATE rollouts SET status = ?, data = ? WHERE id = ?",
        (rollout.status, json.dumps(rollout.as_dict(), sort_keys=True), rollout.id),
    )


def _audit(
    conn: sqlite3.Connection, action: str, rollout: Rollout, at: str, user: str, text: str
) -> None:
    from .embedded import EmbeddedRegistry

    EmbeddedRegistry._audit(
        conn,
        action,
        rollout.name,
        at=at,
        user=user,
        version=rollout.candidate,
        env=rollout.env,
        from_value=rollout.stable,
        to_value=rollout.candidate,
        detail={"rollout": rollout.id, "reason": text},
    )


def share_text(share: float) -> str:
    """0.1 -> '10%', 0.001 -> '0.1%': a share as written, never rounded to 0%."""
    return f"{share * 100:.4g}%"


def plan_text(steps: tuple[float, ...]) -> str:
    return " -> ".join(map(share_text, steps))


def parse_share(text: str, what: str = "share") -> float:
    """'10%', '10' or '2.5%' -> 0.1, 0.1, 0.025: a share of traffic more than 0% and at most
    100%, or :class:`RegistryError` naming the text. A bare number below 1 ('0.1') is refused:
    it could be a fraction (10%) or a percent (0.1%), and a wrong guess routes 100 times too
    much or too little."""
    text = str(text).strip()
    number = text.removesuffix("%").strip()
    try:
        value = float(number)
    except ValueError:
        raise RegistryError(f"{what} {text!r} is not a percentage (write e.g. 10%)") from None
    if not 0 < value <= 100:
        raise RegistryError(f"{what} {text!r} must be more than 0% and at most 100%")
    if value < 1 and not text.endswith("%"):
        raise RegistryError(
            f"{what} {text!r} is ambiguous: write {value * 100:g}% for {text} as a fraction, "
            f"or {text}% for {text} percent (a bare number is a percent: 10 is 10%)"
        )
    return round(value / 100, 6)


def _percent(value: Any) -> str:
    """A config's number of percent (steps: [0.5, 50, 100]) as parse_share reads it."""
    return f"{value}%"


def canary_steps(first: float, steps: str | None = None) -> tuple[float, ...]:
    """A canary's steps: ``steps`` ('10,50,100'), else ``first`` then 50% then 100%."""
    if steps:
        return tuple(parse_share(s, "step") for s in steps.split(","))
    return tuple([first] + [s for s in (0.5, 1.0) if s > first])


def ab_split(text: str) -> float:
    """'50/50' or '70/30' (stable/candidate, adding up to 100) -> the candidate's share."""
    stable, sep, candidate = str(text).partition("/")
    if not sep:
        raise RegistryError(f"--ab {text!r}: write STABLE/CANDIDATE percentages, e.g. 50/50")
    a, b = parse_share(stable, "--ab"), parse_share(candidate, "--ab")
    if abs(a + b - 1) > 1e-6:
        raise RegistryError(f"--ab {text!r}: the two shares must add up to 100")
    return b


@dataclass(frozen=True)
class Declared:
    """A rollout declared in a compiled bundle: its lock's resolved ``deployment.rollout``."""

    reference: str  # NAME:VERSION of the bundle's model, the candidate
    strategy: str | None  # None: the bundle declares no rollout (the caller gives one)
    steps: tuple[float, ...]
    hold_s: float
    seed: int | None  # None: the rollout's id
    guards: Guards
    stable_version: str | None = None  # the version the bundle's manifests keep serving
    config_sha256: str | None = None  # as the registry's lineage records them (lineage.py)
    bundle_sha256: str | None = None

    def differs_from(self, lineage: dict[str, Any]) -> list[str]:
        """The hashes the registered version's lineage recorded that this bundle does not
        have: it was compiled from another config, or recompiled since."""
        mine = {"config_sha256": self.config_sha256, "bundle_sha256": self.bundle_sha256}
        return [
            f"{key} {lineage[key][:12]} (this bundle: {(mine[key] or 'none')[:12]})"
            for key in mine
            if isinstance(lineage.get(key), str) and lineage[key] != mine[key]
        ]


# The config spells blue-green as its other enums are spelled.
CONFIG_STRATEGIES = {"canary": CANARY, "ab": AB, "blue_green": BLUE_GREEN}
# The config's guard_rails keys, which are also `lfm rollout start`'s option names -> Guards'
# fields (min_ratings is neither an option nor a config key).
GUARD_FIELDS = {
    "max_error_rate_increase": "max_error_rate_increase",
    "max_p95_ratio": "max_p95_ratio",
    "max_rating_drop": "max_rating_drop",
    "min_requests": "min_requests",
    "window": "window_s",
}


def guard_default(key: str) -> Any:
    """The default of a guard rail, by its config key or option name (``window``)."""
    return getattr(Guards(), GUARD_FIELDS[key])


def declared_in(bundle: str | Path) -> Declared:
    """The rollout the bundle's config declares (read from its lfm.lock.json, where `lfm
    compile` resolved its defaults): its strategy is None when it declares none."""
    from .lineage import BUNDLE_MANIFEST, read_json
    from .manifest import sha256_file

    lock_path = Path(bundle) / "lfm.lock.json"
    if not lock_path.is_file():
        raise RegistryError(f"--from {bundle}: not a compiled bundle (it has no lfm.lock.json)")
    lock = read_json(lock_path, "lock file")
    config = lock.get("model_config") if isinstance(lock, dict) else None
    deployment = config.get("deployment") if isinstance(config, dict) else None
    block = deployment.get("rollout") if isinstance(deployment, dict) else None
    manifest = Path(bundle) / BUNDLE_MANIFEST
    try:
        hashes = {  # computed as registry.lineage records them at `lfm register`
            "config_sha256": (lock.get("source") or {}).get("sha256"),
            "bundle_sha256": sha256_file(manifest) if manifest.is_file() else None,
        }
        if not isinstance(block, dict):
            reference = f"{lock['name']}:{lock['version']}"
            return Declared(reference, None, (), DEFAULT_HOLD_S, None, Guards(), **hashes)
        strategy = CONFIG_STRATEGIES[block["strategy"]]
        if strategy == CANARY:
            steps = tuple(parse_share(_percent(s), "step") for s in block["steps"])
        elif strategy == AB:
            steps = (ab_split("/".join(map(_percent, str(block["split"]).split("/")))),)
        else:
            steps = (1.0,)
        rails = dict(block.get("guard_rails") or {})
        if "max_error_rate_increase" in rails:
            rails["max_error_rate_increase"] = parse_share(
                rails["max_error_rate_increase"], "max_error_rate_increase"
            )
        guards = Guards(**{GUARD_FIELDS[k]: v for k, v in rails.items()})
        return Declared(
            reference=f"{lock['name']}:{lock['version']}",
            strategy=strategy,
            steps=steps,
            hold_s=float(block.get("hold", DEFAULT_HOLD_S)),
            seed=None if block.get("seed") is None else int(block["seed"]),
            guards=guards,
            stable_version=block.get("stable_version"),
            **hashes,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise RegistryError(
            f"--from {bundle}: its deployment.rollout is not what lfm compile writes ({exc!r}): "
            "recompile the bundle"
        ) from None
