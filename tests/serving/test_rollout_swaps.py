"""A rollout's swaps and an operator's: a blue-green's set-aside and switch back wait for a load
or unload by hand (the server's swap lock) and yield to it; the rollout's hidden versions
(NAME#candidate, NAME#previous) cannot be loaded or unloaded by hand; one followed name's
failure in a registry look does not stop the others'."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("semver")

from lfm_server import serving  # noqa: E402
from test_rollout import (  # noqa: E402
    _post,
    production,  # noqa: F401 (a fixture: bot@production at 1.0.0)
    registry,  # noqa: F401 (a fixture: bot 1.0.0, 1.1.0 and a broken 1.2.0)
)

FOLLOWED = "bot@production"


@pytest.fixture
def server(models, production):  # noqa: F811
    """A real ModelServer in this process, following bot@production; its own follower looks
    only once an hour, so the test drives every swap."""
    from lfm.serving.auth import Keys
    from lfm.serving.server import AdapterSpec, ModelServer

    served = ModelServer(
        str(models.base), [AdapterSpec("bot", FOLLOWED)], keys=Keys([]), follow_interval=3600
    )
    try:
        yield served
    finally:
        served.close()


def test_hidden_versions_cannot_be_loaded_or_unloaded_by_hand(models, tmp_path):
    with serving(str(models.base), "--adapter", f"bot={models.one}", cwd=tmp_path) as server:
        for route, body in (
            ("/v1/unload_lora_adapter", {"lora_name": "bot#previous"}),
            ("/v1/load_lora_adapter", {"lora_name": "bot#candidate", "lora_path": str(models.two)}),
        ):
            status, answer = _post(server, route, body)
            assert status == 400, answer
            message = answer["error"]["message"]
            assert "a rollout of 'bot' keeps loaded" in message, message
            assert "lfm rollout promote, abort or finish" in message
        assert "Traceback" not in server.log.read_text()


def test_a_switch_back_waits_for_a_swap_by_hand(server):
    server.load_adapter("bot#previous", "bot:1.1.0", None)
    done: list = []
    with server._swapping:  # a load or unload by hand, under way
        switching = threading.Thread(
            target=lambda: done.append(server.bring_back("bot#previous", "bot", FOLLOWED))
        )
        switching.start()
        switching.join(0.5)
        assert switching.is_alive() and not done  # it waits for the swap by hand
    switching.join(30)
    assert done and done[0].version == "1.1.0"
    assert server.adapters.get("bot").version == "1.1.0"
    assert server.adapters.get("bot#previous") is None


def test_an_unload_by_hand_is_not_undone_by_a_switch_back(server):
    server.load_adapter("bot#previous", "bot:1.1.0", None)
    server.unload_adapter("bot", None)  # the operator's, just before the switch back
    assert server.bring_back("bot#previous", "bot", FOLLOWED) is None
    assert server.adapters.get("bot") is None
    assert server.adapters.get("bot#previous") is None  # nothing left behind, hidden


def test_a_load_by_hand_is_not_replaced_by_a_promotion(server, models):
    server.load_adapter("bot#candidate", "bot:1.1.0", None)
    server.load_adapter("bot", str(models.two), None)  # by hand: no longer follows the env
    for swap in (
        lambda: server.set_aside("bot#candidate", "bot", "bot#previous", FOLLOWED),
        lambda: server.promote_candidate("bot#candidate", "bot", FOLLOWED),
    ):
        assert swap() is None
        assert server.adapters.get("bot").source == str(models.two)
        assert server.adapters.get("bot#candidate") is None
        assert server.adapters.get("bot#previous") is None
        server.load_adapter("bot#candidate", "bot:1.1.0", None)


def test_a_switch_back_with_its_old_version_gone_leaves_it_to_the_follower(server):
    assert server.bring_back("bot#previous", "bot", FOLLOWED) is None
    assert server.adapters.get("bot").version == "1.0.0"  # untouched


def test_one_names_failure_does_not_stop_the_look_for_the_others(server, monkeypatch):
    from lfm.registry.rollouts import CANARY, RUNNING, Guards, Rollout
    from lfm.serving import rollout_driver
    from lfm.serving.rollout import Live

    rollout = Rollout(
        id=99,
        name="gone",
        env="production",
        strategy=CANARY,
        stable="1.0.0",
        candidate="1.1.0",
        steps=(1.0,),
        step=0,
        hold_s=1,
        guards=Guards(),
        status=RUNNING,
        started_at="t",
        step_started_at="t",
        who="tester",
    )
    server.rollouts.put(Live(rollout, "gone"))  # no longer followed: its part fails below
    server.load_adapter("old#previous", "bot:1.1.0", None)
    server.rollouts.keep("old", 7)  # no longer followed either: its old version goes

    def broken(*args: object) -> None:
        raise KeyError("gone#candidate")

    monkeypatch.setattr(rollout_driver, "_retire", broken)
    rollout_driver.tick(server, {})
    assert server.adapters.get("old#previous") is None
    assert "old" not in server.rollouts.kept()
