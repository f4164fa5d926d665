"""Rollouts without a server: the registry's rollout records and their audit lines, `lfm
rollout` refusing bad input with one line and nothing changed, the guard rails, the A/B
report's intervals and the sticky hash."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm

pytest.importorskip("semver")

from lfm.registry.rollouts import Guards  # noqa: E402
from lfm.serving.abreport import report, wilson  # noqa: E402
from lfm.serving.guardrails import Window, judge  # noqa: E402
from lfm.serving.rollout import share_of  # noqa: E402


@pytest.fixture
def registry(models, tmp_path: Path, monkeypatch) -> Path:
    """bot 1.0.0 and 1.1.0, 1.0.0 in production."""
    monkeypatch.setenv("LFM_REGISTRY", str(tmp_path / "store"))
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("LFM_USER", "tester")
    for version, folder in (("1.0.0", models.one), ("1.1.0", models.two)):
        run("register", "--model", str(folder), "--name", "bot", "--version", version)
    run("promote", "bot:1.0.0", "--env", "production")
    return tmp_path / "store"


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(lfm, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def _audit() -> list[tuple[str, str | None, str | None]]:
    from lfm.registry import open_registry

    store = open_registry()
    try:
        return [(e.action, e.env, e.detail.get("reason")) for e in store.audit("bot")]
    finally:
        store.close()


def test_a_rollout_is_recorded_and_an_abort_leaves_the_environment(registry):
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "10%")
    assert "canary of bot@production 1.0.0 -> 1.1.0 at 10% -> 50% -> 100%" in out
    status = run("rollout", "status", "bot", "--env", "production")
    assert "running" in status and "now step 1 at 10%" in status
    out = run("rollout", "abort", "bot", "--env", "production", "--reason", "not today")
    assert "aborted: bot@production -> 1.0.0 (unchanged)" in out
    assert "1.0.0" in run("show", "bot@production")
    assert "ended" in run("rollout", "status", "bot", "--env", "production")
    actions = [action for action, _, _ in _audit()]
    assert actions[-2:] == ["rollout-start", "rollout-abort"]
    assert "not today" in (_audit()[-1][2] or "")


def test_a_promoted_rollout_moves_the_environment(registry):
    run("rollout", "start", "bot:1.1.0", "--env", "production", "--ab", "50/50")
    out = run("rollout", "promote", "bot", "--env", "production")
    assert "promoted: bot@production -> 1.1.0" in out
    entries = _audit()
    assert [a for a, _, _ in entries[-2:]] == ["rollout-promote", "promote"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--canary", "120%"), "at most 100%"),
        (("--canary", "abc"), "not a percentage"),
        (("--canary", "0"), "more than 0%"),
        (("--ab", "60/60"), "add up to 100"),
        (("--ab", "50"), "STABLE/CANDIDATE"),
        (("--steps", "50,10"), "must not go down"),
        ((), "choose one strategy"),
        (("--canary", "10%", "--blue-green"), "choose one strategy"),
    ],
)
def test_bad_shares_are_one_line_errors(registry, args, words):
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", *args, code=2 if not
              args or "--blue-green" in args else 1)  # fmt: skip
    assert words in out
    assert run("rollout", "status", "bot", "--env", "production", code=1)  # none was started


@pytest.mark.parametrize(
    ("reference", "env", "words"),
    [
        ("bot:1.1.0", "prod", "unknown environment 'prod'"),
        ("bot:9.9.9", "production", "has no version 9.9.9"),
        ("nobody:1.0.0", "production", "no model named 'nobody'"),
        ("bot:1.0.0", "production", "already points at 1.0.0"),
        ("bot:1.1.0", "staging", "points at no version"),
        ("bot@production", "production", "NAME:VERSION"),
    ],
)
def test_bad_rollouts_change_nothing(registry, reference, env, words):
    before = _audit()
    out = run("rollout", "start", reference, "--env", env, "--canary", "10%", code=1)
    assert words in out and out.count("\n") == 1
    assert _audit() == before


def test_one_rollout_at_a_time_and_ending_twice_is_refused(registry):
    run("rollout", "start", "bot:1.1.0", "--env", "production", "--blue-green")
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "5%", code=1)
    assert "blue-green rollout of bot@production is running already" in out
    run("rollout", "abort", "bot", "--env", "production")
    assert "no rollout of bot@production is running" in run(
        "rollout", "abort", "bot", "--env", "production", code=1
    )


def test_advance_takes_the_first_verdict_only(registry):
    from lfm.registry import open_registry, rollouts

    store = open_registry()
    try:
        first = rollouts.start(store, "bot:1.1.0", "production", "canary", (0.1, 0.5, 1.0))
        moved = rollouts.advance(store, first, "held")
        assert moved is not None and moved.weight == 0.5
        assert rollouts.advance(store, first, "held too") is None  # a second server, too late
        ended = rollouts.end(store, moved, rollouts.ROLLED_BACK, "errors")
        assert ended is not None and ended.weight == 0.0
        assert rollouts.end(store, moved, rollouts.PROMOTED, "late") is None
        assert store.get("bot@production", with_files=False).version == "1.0.0"
    finally:
        store.close()


# ---- guard rails, the report, the sticky hash ----------------------------------------------------


def _window(requests: int, errors: int, latency: float = 0.1, ratings: int = 0, rating: float = 1):
    answered = requests - errors
    return Window(requests, errors, (latency,) * answered, (rating,) * ratings)


def test_guard_rails():
    guards = Guards(max_error_rate_increase=0.05, max_p95_ratio=2, min_requests=20, min_ratings=5)
    assert judge(guards, _window(100, 0), _window(19, 19)) == judge(guards, _window(0, 0), _window(0, 0))  # fmt: skip
    assert not judge(guards, _window(19, 19), _window(19, 19)).judged  # too few to judge
    breach = judge(guards, _window(100, 1), _window(20, 3)).breach
    assert breach and "error rate 15.0% (3/20)" in breach
    assert judge(guards, _window(100, 1), _window(40, 2)).breach is None  # 5% vs 1%: within
    assert "p95 latency" in (judge(guards, _window(50, 0), _window(50, 0, 0.3)).breach or "")
    assert judge(guards, _window(50, 0), _window(50, 0, 0.19)).breach is None
    low = judge(guards, _window(50, 0, ratings=5), _window(50, 0, ratings=5, rating=0.5))
    assert "mean rating 0.50" in (low.breach or "")
    # Blue-green: stable had too few requests to compare: errors against zero, no latency.
    assert judge(guards, _window(3, 0), _window(30, 2)).breach
    assert judge(guards, _window(3, 0, 0.01), _window(30, 0, 5.0)).breach is None


def test_wilson_interval_and_report():
    low, high = wilson(0, 10)
    assert low == 0 and math.isclose(high, 0.2775, abs_tol=1e-4)  # the textbook value
    low, high = wilson(5, 10)
    assert math.isclose(low, 0.2366, abs_tol=1e-4) and math.isclose(high, 0.7634, abs_tol=1e-4)
    stable = Window(200, 2, tuple(0.1 + i % 7 / 100 for i in range(198)), (1.0, 0.0) * 20)
    candidate = Window(200, 40, tuple(0.1 + i % 5 / 100 for i in range(160)), (1.0,) * 40)
    found = report({"stable": stable, "candidate": candidate})
    assert found["comparisons"]["error_rate"]["ahead"] == "stable"
    assert found["comparisons"]["rating"]["ahead"] == "candidate"
    assert found["ahead"] == "candidate"  # rating first: what users said
    same = report({"stable": stable, "candidate": stable})
    assert same["ahead"] is None and not same["comparisons"]["error_rate"]["significant"]


def test_the_sticky_hash_is_uniform_and_stable():
    shares = [share_of(7, f"user-{i}") for i in range(10_000)]
    assert abs(sum(s < 0.2 for s in shares) / len(shares) - 0.2) < 0.02
    assert share_of(7, "alice") == share_of(7, "alice") != share_of(8, "alice")
