"""Rollouts driven from a server's registry follower: at every follow interval, for each adapter
served as ``NAME@ENV``, read the registry's rollout of that environment and act on it.

- A new rollout: load the candidate beside the stable version and warm it (one short
  generation, alone and in a batch beside stable), then route its share to it. A candidate
  that will not load or warm is rolled back, saying why.
- A running one: judge the guard rails over the window. A breach routes everything back to
  stable at once, then records the rollback (and why) in the registry; the environment stays.
  A canary or blue-green whose step held ``hold_s`` with enough requests moves on; its last
  step promotes: the environment moves to the candidate, which takes the public name as it is
  (no reload), and the old version drains; a blue-green's old version stays loaded instead (as
  ``NAME#previous``) until the rollout is finished or switched back (`lfm rollout finish|
  switch-back`): a switch back gives it the public name again at once, without a load.
- One ended elsewhere (`lfm rollout promote|abort`, another replica's verdict): the same.

Several servers may follow the same environment; each judges on its own traffic and the
registry takes the first verdict per step (see :func:`lfm.registry.rollouts.advance`). Each
swap takes the server's swap lock, as a load or unload by hand does, and the hand's wins (see
``ModelServer.promote_candidate``); one name's failure is logged and the others' go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from lfm.registry import RegistryError
from lfm.registry.identity import epoch
from lfm.registry.rollouts import (
    PROMOTED,
    ROLLED_BACK,
    SWITCHED_BACK,
    Rollout,
    advance,
    end,
    latest,
    running,
    share_text,
)

from .engine import Event, Job, Sampling
from .guardrails import judge
from .rollout import CANDIDATE, PREVIOUS_SUFFIX, STABLE, Live

if TYPE_CHECKING:
    from lfm.registry import Registry

    from .server import ModelServer

logger = logging.getLogger("lfm.serving")
WARM_TIMEOUT_S = 120.0
WARM_PROMPT = "Hello"


def tick(server: ModelServer, following: dict[str, str]) -> None:
    """One look at the registry for every followed name (``public -> NAME@ENV``)."""
    if not following and not server.rollouts.all() and not server.rollouts.kept():
        return
    from lfm.registry import open_registry

    store = open_registry()
    if store.backend != "embedded":  # rollouts live in the embedded registry only
        store.close()
        return
    try:
        for public, reference in following.items():
            name, _, env = reference.partition("@")
            _each(_one, reference, server, store, public, name, env)
        for live in server.rollouts.all():  # no longer followed (unloaded, loaded by hand)
            if live.public not in following:
                _each(_retire, live.public, server, live, None)
        for public in server.rollouts.kept():
            if public not in following:
                _each(_let_previous_go, public, server, public)
    finally:
        store.close()


def _each(step: Callable[..., None], what: str, *args: object) -> None:
    """One name's part of a tick: its failure is logged, and the other names' parts go on."""
    try:
        step(*args)
    except Exception:
        logger.exception("rollout of %s failed a step; serving goes on", what)


def _one(server: ModelServer, store: Registry, public: str, name: str, env: str) -> None:
    kept = server.rollouts.kept().get(public)
    if kept is not None:
        _settle_previous(server, store, public, name, env, kept)
    live = server.rollouts.get(public)
    current = running(store, name, env)
    if live is not None and (current is None or current.id != live.rollout.id):
        ended = latest(store, name, env)
        finished = ended if ended and ended.id == live.rollout.id else None
        _retire(server, live, finished)
        live = None
    if current is None:
        return
    if live is None:
        live = _begin(server, store, public, current)
        if live is None:
            return
    live.rollout = current
    if live.halted:  # routed back already: the registry is told (again, if it failed before)
        _finish(server, store, live, ROLLED_BACK, live.halted)
        return
    _judge(server, store, live)


def _begin(server: ModelServer, store: Registry, public: str, rollout: Rollout) -> Live | None:
    live = Live(rollout, public)
    live.draws.seed(rollout.seed)
    server.rollouts.put(live)  # requests go to stable until the candidate is ready
    try:
        server.load_adapter(live.candidate_name, f"{rollout.name}:{rollout.candidate}", None)
        _warm(server, live.candidate_name, public)
    except Exception as exc:
        live.halted = f"the candidate {rollout.candidate} could not be served: {exc}"
        logger.warning("rollout %s: %s", rollout.id, live.halted)
        _finish(server, store, live, ROLLED_BACK, live.halted)
        return None
    live.ready = True
    plan = f"{rollout.strategy} {rollout.stable} -> {rollout.candidate}"
    logger.info("rollout %s: %s at %s", rollout.id, plan, share_text(rollout.weight))
    return live


def _warm(server: ModelServer, candidate: str, stable: str) -> None:
    """A short generation on the new version, batched beside the stable one (the mixed-batch
    path's first run is slow), before it takes traffic; an error here rolls it back."""
    held = [a for a in (server.adapters.acquire(candidate), server.adapters.acquire(stable)) if a]
    if not held or held[0].name != candidate:
        for adapter in held:
            server.adapters.release(adapter)
        raise RuntimeError(f"{candidate} is not loaded")
    outcomes: dict[str, Event] = {}
    done = threading.Semaphore(0)

    def emitter(name: str) -> Callable[[Event], None]:
        def emit(event: Event) -> None:
            if event.kind in ("done", "error"):
                outcomes[name] = event
                done.release()

        return emit

    try:
        ids = list(server.tokenizer(WARM_PROMPT)["input_ids"]) or [0]
        for adapter in held:
            job = Job(ids, adapter.internal, Sampling(max_tokens=2), emitter(adapter.name))
            server.engine.submit(job)
        for _ in held:
            if not done.acquire(timeout=WARM_TIMEOUT_S):
                raise RuntimeError(f"its warm-up generation took over {WARM_TIMEOUT_S:.0f}s")
        if outcomes[candidate].kind == "error":
            raise RuntimeError(f"its warm-up generation failed: {outcomes[candidate].text}")
    finally:
        for adapter in held:
            server.adapters.release(adapter)


def _judge(server: ModelServer, store: Registry, live: Live) -> None:
    rollout = live.rollout
    verdict = judge(rollout.guards, *live.windows().values())
    if verdict.breach:
        live.halted = f"guard rail breached: {verdict.breach}"  # routed back from now on
        logger.warning("rollout %s rolled back: %s", rollout.id, live.halted)
        _finish(server, store, live, ROLLED_BACK, live.halted)
        return
    if not rollout.auto_promotes or not live.ready:
        return
    started = epoch(rollout.step_started_at)
    in_step = live.stats[CANDIDATE].window(rollout.guards.window_s, since=started)
    held = time.time() - started
    if held < rollout.hold_s or in_step.requests < rollout.guards.min_requests:
        return
    detail = (
        f"{share_text(rollout.weight)} held {held:.0f}s over {in_step.requests} candidate requests "
        "within its guard rails"
    )
    if rollout.step + 1 < len(rollout.steps):
        moved = advance(store, rollout, detail)
        if moved is not None:
            live.rollout = moved
            logger.info(
                "rollout %s: the candidate now takes %s", moved.id, share_text(moved.weight)
            )
        return
    try:
        _finish(server, store, live, PROMOTED, detail)
    except RegistryError as exc:  # e.g. the environment's gates refuse it: it cannot end well
        live.halted = f"the candidate cannot be promoted: {exc}"  # routed back from now on
        logger.warning("rollout %s rolled back: %s", rollout.id, live.halted)
        _finish(server, store, live, ROLLED_BACK, live.halted)


def _finish(server: ModelServer, store: Registry, live: Live, status: str, reason: str) -> None:
    ended = end(store, live.rollout, status, reason, by=f"lfm serve ({server.base_name})")
    if ended is not None and ended.status != status:
        logger.warning("rollout %s %s: %s", ended.id, ended.status, ended.reason)
    _retire(server, live, ended or latest(store, live.rollout.name, live.rollout.env))


def _retire(server: ModelServer, live: Live, ended: Rollout | None) -> None:
    """The rollout is over here: a promoted candidate takes the public name, else it drains."""
    server.rollouts.drop(live.public)
    _log_end(live, ended)
    reference = f"{live.rollout.name}@{live.rollout.env}"
    if ended is not None and ended.status == PROMOTED and live.ready and ended.keeps_previous:
        previous = live.public + PREVIOUS_SUFFIX
        adapter = server.set_aside(live.candidate_name, live.public, previous, reference)
        if adapter is not None:
            server.rollouts.keep(live.public, ended.id)
            serves = f"{live.public} now serves {adapter.version}"
            logger.info(
                "rollout %s: %s; %s stays loaded to switch back to", ended.id, serves, ended.stable
            )
        return
    if ended is not None and ended.status == PROMOTED and live.ready:
        server.promote_candidate(live.candidate_name, live.public, reference)
        return
    if server.adapters.get(live.candidate_name) is not None:
        server.unload_adapter(live.candidate_name, None)


def _log_end(live: Live, ended: Rollout | None) -> None:
    """One line when a rollout ends here, however it ended (by this server, another replica or
    `lfm rollout promote|abort`), as loads are logged."""
    rollout = live.rollout
    if ended is None:
        logger.info(
            "rollout %s: %s is no longer followed here; its candidate %s is unloaded",
            rollout.id,
            live.public,
            rollout.candidate,
        )
        return
    serves = ended.candidate if ended.status == PROMOTED and live.ready else ended.stable
    reason = ended.reason or "no reason given"
    logger.info(
        "rollout %s %s: %s serves %s (%s)", ended.id, ended.status, live.public, serves, reason
    )


def _settle_previous(
    server: ModelServer, store: Registry, public: str, name: str, env: str, kept: int
) -> None:
    """A promoted blue-green whose old version this server keeps: switched back, it takes the
    public name again at once (before the follower compares versions, so nothing reloads);
    finished (or superseded), it is unloaded; still kept, nothing happens."""
    newest = latest(store, name, env)
    if newest is not None and newest.id == kept and newest.keeps_previous:
        return
    if newest is not None and newest.id == kept and newest.status == SWITCHED_BACK:
        back = server.bring_back(public + PREVIOUS_SUFFIX, public, f"{name}@{env}")
        server.rollouts.unkeep(public)
        if back is None:
            logger.warning(
                "rollout %s switched back; %s here has no kept old version to bring back (a "
                "followed name loads the environment's version at its next look)",
                kept,
                public,
            )
            return
        logger.info("rollout %s switched back: %s serves %s again", kept, public, back.version)
        return
    _let_previous_go(server, public)


def _let_previous_go(server: ModelServer, public: str) -> None:
    server.rollouts.unkeep(public)
    previous = public + PREVIOUS_SUFFIX
    if server.adapters.get(previous) is not None:
        server.unload_adapter(previous, None)
        logger.info("%s: the version kept to switch back to is unloaded", public)


__all__ = ["CANDIDATE", "STABLE", "tick"]
