"""Blue-green keeps the old version: once promoted, the old one stays loaded beside the new one
(as NAME#previous, not for clients) until `lfm rollout finish`; `lfm rollout switch-back` gives
it the served name again at once, without loading anything. In the registry (units) and on a
real `lfm serve` under load."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from lfm.cli import lfm

pytest.importorskip("semver")

from lfm_server import serving  # noqa: E402
from test_rollout import (  # noqa: E402
    FOLLOW,
    SLOW_OK,
    _ask,
    _audit,
    _get,
    _lfm,
    _live,
    _post,
    _rollout,
    _wait_for,
    registry,  # noqa: F401 (a fixture: bot 1.0.0, 1.1.0 and a broken 1.2.0)
)


@pytest.fixture
def production(registry, monkeypatch) -> dict[str, str]:  # noqa: F811
    """bot@production at 1.0.0, no rollout running and no old version kept."""
    for key, value in registry.items():
        monkeypatch.setenv(key, value)
    CliRunner().invoke(lfm, ["rollout", "abort", "bot", "--env", "production"])
    CliRunner().invoke(lfm, ["rollout", "finish", "bot", "--env", "production"])
    _lfm("promote", "bot:1.0.0", "--env", "production")
    return registry


def _promoted_blue_green(*extra: str) -> None:
    from lfm.registry import open_registry, rollouts

    _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--blue-green", *extra)
    store = open_registry()
    try:
        running = rollouts.running(store, "bot", "production")
        rollouts.end(store, running, rollouts.PROMOTED, "held")
    finally:
        store.close()


def test_a_promoted_blue_green_keeps_its_old_version_until_finished(production):
    _promoted_blue_green()
    status = _lfm("rollout", "status", "bot", "--env", "production")
    assert "promoted" in status and "1.0.0 stays loaded beside it" in status
    # Nothing else starts while the old version is kept; abort points at switch-back.
    out = _lfm("rollout", "start", "bot:1.2.0", "--env", "production", "--canary", "5%", code=1)
    assert "keeps 1.0.0 loaded to switch back to: finish it first" in out
    out = _lfm("rollout", "abort", "bot", "--env", "production", code=1)
    assert "lfm rollout switch-back bot --env production goes back to it" in out
    said = _lfm("rollout", "finish", "bot", "--env", "production", "--reason", "all good")
    assert "finished: bot@production stays at 1.1.0; servers unload 1.0.0" in said
    assert "1.1.0" in _lfm("show", "bot@production")
    assert not _rollout().keeps_previous
    out = _lfm("rollout", "switch-back", "bot", "--env", "production", code=1)
    assert "no promoted blue-green rollout of bot@production keeps an old version" in out
    assert [e.action for e in _audit()][-3:] == ["rollout-promote", "promote", "rollout-finish"]


def test_switch_back_moves_the_environment_back_from_the_new_version_only(production):
    _promoted_blue_green()
    said = _lfm("rollout", "switch-back", "bot", "--env", "production", "--reason", "latency")
    assert "switched back: bot@production -> 1.0.0" in said
    assert "1.0.0" in _lfm("show", "bot@production")
    ended = _rollout()
    assert ended.status == "switched-back" and not ended.keeps_previous
    actions = [e.action for e in _audit()]
    assert actions[-2:] == ["rollout-switch-back", "rollback-to"]
    # Moved by hand after the promotion: switching back would undo that, so it is refused.
    _promoted_blue_green()
    _lfm("promote", "bot:1.2.0", "--env", "production")
    out = _lfm("rollout", "switch-back", "bot", "--env", "production", code=1)
    assert "points at 1.2.0, not at 1.1.0" in out and "moved meanwhile" in out
    assert "1.2.0" in _lfm("show", "bot@production")


def test_a_canary_or_an_ab_test_keeps_nothing(production):
    _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--ab", "50/50")
    _lfm("rollout", "promote", "bot", "--env", "production")
    assert not _rollout().keeps_previous
    out = _lfm("rollout", "switch-back", "bot", "--env", "production", code=1)
    assert "keeps an old version" in out


def test_blue_green_promoted_then_switched_back_at_once_under_load(models, production, tmp_path):
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW)
    with serving(*args, cwd=tmp_path, env=production) as server:
        stop = threading.Event()
        answers: list[tuple[int, str]] = []

        def ask(worker: int) -> None:
            i = 0
            while not stop.is_set():
                status, body = _ask(server, f"s{worker}-{i}")
                answers.append((status, body.get("system_fingerprint", body)))
                i += 1

        with ThreadPoolExecutor(4) as pool:
            try:  # the clients stop however the block ends, or a failure would hang
                for worker in range(4):
                    pool.submit(ask, worker)
                _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--blue-green",
                     "--min-requests", "5", "--hold", "1", *SLOW_OK)  # fmt: skip
                _wait_for(lambda: _rollout().status == "promoted", 120, what="the promotion")
                _wait_for(lambda: _live(server) is None, what="the promotion on the server")
                _wait_for(lambda: answers[-1][1] == "bot@1.1.0", what="the new version")
                # The old version is kept, and is not for clients.
                assert "bot#previous" not in _get(server, "/v1/models")
                hidden = _post(server, "/v1/completions", {"model": "bot#previous", "prompt": "hi"})
                assert hidden[0] == 404
                loads_before = server.log.read_text().count("adapter bot <-")
                time.sleep(1)
                _lfm("rollout", "switch-back", "bot", "--env", "production")
                back = _wait_for(lambda: answers[-1][1] == "bot@1.0.0", what="the switch back")
                time.sleep(1)
                mark = len(answers)
                time.sleep(1)
            finally:
                stop.set()
        print(f"blue-green switched back in {back:.2f}s (follow interval {FOLLOW[1]}s)")
        assert {fp for _, fp in answers[mark:]} == {"bot@1.0.0"}
        assert [a for a in answers if a[0] != 200] == []  # nothing dropped, either way
        # Switched back without a load: the follower found 1.0.0 already serving.
        log = server.log.read_text()
        assert log.count("adapter bot <-") == loads_before, log
        assert "switched back: bot serves 1.0.0 again" in log
        assert "1.0.0" in _lfm("show", "bot@production")
        assert "Traceback" not in log


def test_finishing_unloads_the_old_version_on_the_server(models, production, tmp_path):
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW)
    with serving(*args, cwd=tmp_path, env=production) as server:
        _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--blue-green",
             "--hold", "3600")  # fmt: skip
        _wait_for(lambda: (_live(server) or {}).get("ready"), what="the new version warmed")
        _lfm("rollout", "promote", "bot", "--env", "production")  # by hand, before its hold
        _wait_for(lambda: "stays loaded to switch back to" in server.log.read_text(),
                  what="the old version kept")  # fmt: skip
        _lfm("rollout", "finish", "bot", "--env", "production")
        _wait_for(lambda: "the version kept to switch back to is unloaded" in server.log.read_text(),
                  what="the unload")  # fmt: skip
        unloads = [e for e in _audit() if e.action == "serve-unload"]
        assert unloads and unloads[-1].version == "1.0.0"
        assert {_ask(server, f"f{i}")[1]["system_fingerprint"] for i in range(10)} == {"bot@1.1.0"}
