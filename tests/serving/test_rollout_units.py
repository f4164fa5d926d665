"""Rollouts without a server: the registry's rollout records and their audit lines, `lfm
rollout` refusing bad input with one line and nothing changed, the guard rails, the A/B
report's intervals and the sticky hash."""

from __future__ import annotations

import json
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
    assert "running" in status and "now step 1 of 3 at 10%" in status
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


# ---- review fixes: gates, a moved environment, the CLI, the report, threads, feedback -----------


def _gated(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "gated.yaml"
    config.write_text("require_gates: [production]\n")
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(config))


def test_a_rollout_a_gated_environment_would_never_promote_is_refused_up_front(
    registry, tmp_path, monkeypatch
):
    _gated(tmp_path, monkeypatch)
    before = _audit()
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "10%", code=1)
    assert "cannot roll bot:1.1.0 out in production: it could never be promoted there" in out
    assert "no evaluation gates are recorded" in out and out.count("\n") == 1
    assert _audit() == before


def test_promoting_after_the_environment_moved_by_hand_aborts_instead(registry, models):
    from lfm.registry import open_registry, rollouts

    run("register", "--model", str(models.one), "--name", "bot", "--version", "1.2.0")
    run("rollout", "start", "bot:1.1.0", "--env", "production", "--ab", "50/50")
    run("promote", "bot:1.2.0", "--env", "production")  # by hand, during the rollout
    out = run("rollout", "promote", "bot", "--env", "production", code=1)
    assert "aborted: not promoted: bot@production was moved to 1.2.0 meanwhile" in out
    assert "1.2.0" in run("show", "bot@production")  # the manual move stands
    actions = [action for action, _, _ in _audit()]
    assert actions[-1] == "rollout-abort" and actions.count("rollout-promote") == 0

    run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "10%")
    store = open_registry()
    try:  # what a server's last step does
        started = rollouts.running(store, "bot", "production")
        assert started is not None and started.stable == "1.2.0"
        store.promote("bot:1.0.0", "production")
        ended = rollouts.end(store, started, rollouts.PROMOTED, "held")
        assert ended is not None and ended.status == rollouts.ABORTED
        assert "moved to 1.0.0 meanwhile" in ended.reason
        assert store.get("bot@production", with_files=False).version == "1.0.0"
    finally:
        store.close()


def test_canary_and_steps_together_is_a_usage_error(registry):
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "10%",
              "--steps", "20,100", code=2)  # fmt: skip
    assert "--canary 10% and --steps 20,100: give one" in out
    assert "5,25,100" in run("rollout", "start", "--help")


def test_no_errors_on_either_side_is_no_difference_not_missing_data():
    clean = Window(5000, 0, (0.1, 0.2) * 2500, ())
    found = report({"stable": clean, "candidate": clean})["comparisons"]["error_rate"]
    assert found["difference"] == 0 and found["note"] == "no errors on either side"
    assert found["ahead"] is None and not found["significant"]
    failing = report({"stable": Window(50, 50, (), ()), "candidate": Window(50, 50, (), ())})
    assert failing["comparisons"]["error_rate"]["note"] == "every request failed on both sides"
    # All good against all bad: a difference, with an interval (Newcombe's), not "no data".
    apart = report({"stable": Window(50, 50, (), ()), "candidate": clean})
    verdict = apart["comparisons"]["error_rate"]
    assert verdict["difference"] == 1 and verdict["ahead"] == "candidate"
    assert 0 < verdict["ci95"][0] < 1 == verdict["ci95"][1]


def test_a_window_is_read_while_the_event_loop_writes():
    import sys
    import threading

    from lfm.serving.rollout import MAX_EVENTS, Stats

    stats = Stats()
    for i in range(MAX_EVENTS):
        stats.record(True, 0.1, 1)
        stats.rate(1.0, f"a{i}")
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            stats.record(bool(i % 2), 0.1, 1)
            stats.rate(0.5, f"b{i}")
            i += 1

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: mid-iteration
    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(30):
            window = stats.window(300)
            assert window.requests == MAX_EVENTS and len(window.ratings) == MAX_EVENTS
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(switch)


class _Histogram:
    def __init__(self) -> None:
        self.seen: list[float] = []

    def labels(self, *labels: str) -> _Histogram:
        return self

    def observe(self, value: float) -> None:
        self.seen.append(value)


def test_a_rating_counts_before_the_log_and_once_per_answer(tmp_path):
    """The guard rails get a rating even when the log cannot be written (a clear 503, and the
    feedback may be sent again: replaced, not counted twice); a second feedback is refused."""
    import asyncio
    from types import SimpleNamespace

    from lfm.registry.rollouts import RUNNING, Rollout
    from lfm.runtime.apikeys import LOCAL
    from lfm.serving.protocol import APIError
    from lfm.serving.rollout import CANDIDATE, Live, Rollouts
    from lfm.serving.rollout_api import feedback

    rollout = Rollout(3, "bot", "production", "ab", "1.0.0", "1.1.0", (0.5,), 0, 0.0, Guards(),
                      RUNNING, "t", "t", "tester")  # fmt: skip
    live = Live(rollout, "bot", ready=True)
    rollouts = Rollouts()
    rollouts.put(live)
    blocker = tmp_path / "logs"
    blocker.write_text("not a folder")
    histogram = _Histogram()
    server = SimpleNamespace(
        rollouts=rollouts, feedback_log=blocker / "feedback.jsonl", feedback_text=False,
        metrics=SimpleNamespace(variant_ratings=histogram),
    )  # fmt: skip
    answer = {"model": "bot", "version": "1.1.0", "variant": CANDIDATE, "rollout": 3}
    rollouts.remember("a1", answer)

    def send(body: dict) -> int:
        try:
            return asyncio.run(feedback(server, None, LOCAL, body)).status_code  # type: ignore[arg-type]
        except APIError as exc:
            assert "\n" not in exc.message
            return exc.status

    assert send({"id": "a1", "rating": 0.0}) == 503
    assert live.stats[CANDIDATE].window(300).ratings == (0.0,)  # counted though not logged
    blocker.unlink()
    assert send({"id": "a1", "rating": 0.0}) == 200  # sent again: logged, not counted twice
    assert live.stats[CANDIDATE].window(300).ratings == (0.0,) and histogram.seen == [0.0]
    assert send({"id": "a1", "rating": 1.0}) == 409
    assert live.stats[CANDIDATE].window(300).ratings == (0.0,)
    assert len(server.feedback_log.read_text().splitlines()) == 1


@pytest.fixture
def endpoint():
    """A server answering GET /v1/rollouts with whatever JSON the test sets."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer: dict = {"body": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            data = json.dumps(answer["body"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", answer
    finally:
        httpd.shutdown()
        httpd.server_close()


def _served_report(rollout_id: int) -> dict:
    clean = Window(3000, 0, (0.1, 0.2) * 1500, ())
    found = report({"stable": clean, "candidate": clean})
    return {"object": "list", "data": [{"model": "bot", "rollout": {"id": rollout_id},
                                        "report": found}]}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([1, 2], "no list of rollouts under 'data'"),
        ({"data": {"a": 1}}, "no list of rollouts under 'data'"),
        ({"data": [1]}, "a rollout that is not an object"),
        ({"data": [{"rollout": 1}]}, "a rollout that is not an object"),
        ({"data": [{"rollout": {"id": "ID"}}]}, "its rollout has no report"),
        ({"data": [{"rollout": {"id": "ID"}, "report": {"variants": {}}}]}, "has no variants"),
        ("no comparisons", "its report has no comparisons"),
        ("bad variant", "variant 'stable' has no number 'requests'"),
        ("bad verdict", "comparison 'rating' has no difference and interval"),
    ],
)
def test_an_unexpected_server_answer_is_one_clear_line(registry, endpoint, body, words):
    url, answer = endpoint
    rollout = run("rollout", "start", "bot:1.1.0", "--env", "production", "--ab", "50/50")
    rollout_id = int(rollout.split(":")[0].split()[1])
    good = _served_report(rollout_id)
    if body == "no comparisons":
        del good["data"][0]["report"]["comparisons"]
        body = good
    elif body == "bad variant":
        good["data"][0]["report"]["variants"]["stable"]["requests"] = "many"
        body = good
    elif body == "bad verdict":
        good["data"][0]["report"]["comparisons"]["rating"] = {"ahead": None, "difference": 0.5}
        body = good
    answer["body"] = json.loads(json.dumps(body).replace('"ID"', str(rollout_id)))
    for command in ("status", "report"):
        result = CliRunner().invoke(
            lfm, ["rollout", command, "bot", "--env", "production", "--endpoint", url]
        )
        assert result.exit_code == 1, result.output
        error = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(error) == 1 and "unexpected shape" in error[0] and words in error[0], error
        assert "Traceback" not in result.output


def test_a_report_with_no_errors_says_so(registry, endpoint):
    url, answer = endpoint
    rollout = run("rollout", "start", "bot:1.1.0", "--env", "production", "--ab", "50/50")
    answer["body"] = _served_report(int(rollout.split(":")[0].split()[1]))
    out = run("rollout", "report", "bot", "--env", "production", "--endpoint", url)
    assert "error_rate: no difference (no errors on either side)" in out
    assert "not enough data" not in out.split("error_rate")[1].splitlines()[0]


# ---- shares, steps, the keyless draw's seed, what status and the audit log say -----------------


@pytest.mark.parametrize("bare", ["0.1", "0.5"])
def test_a_bare_share_below_one_is_refused_as_ambiguous(registry, bare):
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", bare, code=1)
    assert "ambiguous" in out and f"{float(bare) * 100:g}%" in out and f"{bare}%" in out
    assert out.count("\n") == 1
    said = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", f"{bare}%")
    assert f"at {bare}% -> 50% -> 100%" in said  # a thousandth is shown, not rounded to 0%


@pytest.mark.parametrize("steps", ["10,50", "100,50", "5"])
def test_a_canary_must_end_at_100_percent(registry, steps):
    out = run("rollout", "start", "bot:1.1.0", "--env", "production", "--steps", steps, code=1)
    assert "must be 100%" in out or "must not go down" in out
    assert run("rollout", "status", "bot", "--env", "production", code=1)  # none was started


def test_each_rollout_draws_its_own_keyless_sequence_unless_seeded(registry):
    first = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "20%")
    run("rollout", "abort", "bot", "--env", "production")
    second = run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "20%")
    run("rollout", "abort", "bot", "--env", "production")
    ids = [int(out.split(":")[0].split()[1]) for out in (first, second)]
    seeds = [_rollout(i).seed for i in ids]
    assert seeds == ids and seeds[0] != seeds[1]
    run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "20%", "--seed", "0")
    assert _latest().seed == 0  # --seed replays a draw


def test_status_says_what_a_step_waits_for_and_how_it_ended(registry):
    start = ("--steps", "20,100", "--hold", "600", "--min-requests", "30")
    run("rollout", "start", "bot:1.1.0", "--env", "production", *start)
    status = run("rollout", "status", "bot", "--env", "production")
    assert "now step 1 of 2 at 20%" in status
    assert "hold 600s per step: held 0s, 600s left" in status or "599s left" in status
    assert "30 candidate requests in this step" in status and "then it moves to 100%" in status
    assert "guard rails: error rate at most 5.0% above stable's, p95 latency at most 2x" in status
    run("rollout", "abort", "bot", "--env", "production", "--reason", "not today")
    nowhere = "http://127.0.0.1:9"  # never asked: the rollout has ended
    status = run("rollout", "status", "bot", "--env", "production", "--endpoint", nowhere)
    assert "now step" not in status
    assert "outcome: aborted at step 1 of 2 (20%); bot@production stayed at 1.0.0" in status
    assert "ended" in status and "not today" in status
    assert "the rollout has ended (aborted), so no server measures it" in status


def test_the_audit_log_as_text_gives_each_line_its_reason(registry):
    why = ("--reason", "try the new prompt")
    run("rollout", "start", "bot:1.1.0", "--env", "production", "--ab", "50/50", *why)
    run("rollout", "abort", "bot", "--env", "production", "--reason", "not\x1b[2J today")
    lines = run("registry", "audit", "bot").splitlines()
    assert "try the new prompt" in lines[-2] and "rollout-start" in lines[-2]
    assert lines[-1].endswith("not\\x1b[2J today")  # shown, not obeyed by the terminal


def _rollout(ident: int):
    from lfm.registry import open_registry
    from lfm.registry.rollouts import _by_id, _conn

    store = open_registry()
    try:
        return _by_id(_conn(store), ident)
    finally:
        store.close()


def _latest():
    from lfm.registry import open_registry, rollouts

    store = open_registry()
    try:
        return rollouts.latest(store, "bot", "production")
    finally:
        store.close()


def test_a_row_written_by_a_newer_lfm_is_read_without_its_new_fields(registry):
    """An older `lfm serve` replica reads rows a newer `lfm rollout` wrote: fields it does not
    know (in the rollout and in its guard rails) are left out, not a TypeError every tick."""
    from lfm.registry.rollouts import Rollout

    run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "10%")
    stored = _latest().as_dict()
    newer = {**stored, "shadow_traffic": 0.2, "guards": {**stored["guards"], "max_cost": 3}}
    read = Rollout.from_dict(newer)
    assert read == _latest()
    assert Rollout.from_dict(json.loads(json.dumps(newer))).guards == _latest().guards


@pytest.mark.parametrize("kind", ["full", "embedding", "merged"])
def test_a_candidate_no_server_can_follow_is_refused(registry, models, kind):
    """`lfm serve` follows adapters only (--adapter NAME=NAME@ENV): a rollout of a whole model
    would never advance, so it is refused, saying why, and nothing is written."""
    for version, folder, kind_here in (
        ("1.0.0", models.one, "adapter"),
        ("1.1.0", models.two, kind),
    ):
        register = ("--model", str(folder), "--name", "whole", "--version", version)
        run("register", *register, "--type", kind_here)
    run("promote", "whole:1.0.0", "--env", "production")
    before = _audit()
    out = run("rollout", "start", "whole:1.1.0", "--env", "production", "--blue-green", code=1)
    assert f"the registry records it as {kind!r}" in out and "LoRA adapters only" in out
    assert "lfm promote whole:1.1.0 --env ENV" in out and out.count("\n") == 1
    assert _audit() == before


def test_the_start_options_defaults_are_the_guards_defaults(registry):
    """One place for the defaults: `lfm rollout start`'s options read the Guards dataclass."""
    from lfm.registry.rollouts import DEFAULT_HOLD_S

    run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "10%")
    started = _latest()
    assert started.guards == Guards() and started.hold_s == DEFAULT_HOLD_S
    shown = run("rollout", "start", "--help")
    assert f"[default: {Guards().min_requests};" in shown and "[default: 5%]" in shown
