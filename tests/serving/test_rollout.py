"""Rollouts on a real `lfm serve` following bot@production, with two adapters on the tiny model
and a third made to fail (NaN weights): a canary's share, sticky keys, per-variant metrics and
feedback, automatic rollback with nothing lost, steps that promote, and a blue-green switch
under load that drops no request."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm_server import Server, serving

pytest.importorskip("semver")

FOLLOW = ("--follow-interval", "0.3")
# Latency is not what these tests judge: on a loaded machine the candidate's first requests (its
# warm-up) can be slower than twice stable's, which would roll it back mid-test.
SLOW_OK = ("--max-p95-ratio", "1000")


def _broken(base: Path, out: Path) -> Path:
    """An adapter that loads, and passes the server's warm-up ("Hello"), but computes NaN for
    any prompt holding the token of "hello" (its embedding's LoRA column is NaN): a candidate
    that fails on live traffic."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    warm = set(tokenizer("Hello")["input_ids"])
    token = next(t for t in tokenizer("hello")["input_ids"] if t not in warm)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, target_modules=["embed_tokens"], init_lora_weights=False),
    )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_embedding_A" in name:
                parameter[:, token] = float("nan")
    model.save_pretrained(out, save_embedding_layers=False)
    return out


@pytest.fixture(scope="module")
def registry(models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """bot 1.0.0 (adapter one), 1.1.0 (two), 1.2.0 (broken)."""
    root = tmp_path_factory.mktemp("rollout-registry")
    broken = _broken(models.base, root / "broken")
    env = {
        "LFM_REGISTRY": str(root / "store"),
        "LFM_REGISTRY_CONFIG": str(root / "none.yaml"),
        "LFM_USER": "tester",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        for version, folder in (("1.0.0", models.one), ("1.1.0", models.two), ("1.2.0", broken)):
            _lfm("register", "--model", str(folder), "--name", "bot", "--version", version)
    return env


@pytest.fixture
def production(registry, monkeypatch) -> dict[str, str]:
    """bot@production at 1.0.0, no rollout running and no blue-green's old version kept,
    whatever the test before did."""
    for key, value in registry.items():
        monkeypatch.setenv(key, value)
    CliRunner().invoke(lfm, ["rollout", "abort", "bot", "--env", "production"])
    CliRunner().invoke(lfm, ["rollout", "finish", "bot", "--env", "production"])
    _lfm("promote", "bot:1.0.0", "--env", "production")
    return registry


def _lfm(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(lfm, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _post(server: Server, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url + path,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _ask(server: Server, key: str | None = None, *, header: bool = False) -> tuple[int, dict]:
    body: dict = {"model": "bot", "prompt": "hello", "max_tokens": 2, "temperature": 0}
    headers = {}
    if key and header:
        headers["X-LFM-Session"] = key
    elif key:
        body["user"] = key
    return _post(server, "/v1/completions", body, headers)


def _get(server: Server, path: str) -> str:
    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        return response.read().decode()


def _live(server: Server) -> dict | None:
    data = json.loads(_get(server, "/v1/rollouts"))["data"]
    return data[0] if data else None


def _wait_for(condition, seconds: float = 60, what: str = "the server") -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what}: not in {seconds}s"
        time.sleep(0.1)
    return time.monotonic() - started


def _rollout():
    from lfm.registry import open_registry, rollouts

    store = open_registry()
    try:
        return rollouts.latest(store, "bot", "production")
    finally:
        store.close()


def _audit() -> list:
    from lfm.registry import open_registry

    store = open_registry()
    try:
        return store.audit("bot")
    finally:
        store.close()


def test_a_canary_takes_its_share_sticky_keys_stay_and_variants_are_measured(
    models, production, tmp_path: Path
):
    feedback = tmp_path / "feedback.jsonl"
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW,
            "--feedback-log", str(feedback))  # fmt: skip
    with serving(*args, cwd=tmp_path, env=production) as server:
        _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "20%",
             "--hold", "3600", "--seed", "5", *SLOW_OK)  # fmt: skip
        _wait_for(lambda: (_live(server) or {}).get("ready"), what="the canary")
        rollout_id = _live(server)["rollout"]["id"]

        # 500 requests, each its own user: 20% +- 5% answered by the candidate.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: _ask(server, f"user-{i}"), range(500)))
        assert {status for status, _ in answers} == {200}
        versions = [body["system_fingerprint"] for _, body in answers]
        share = versions.count("bot@1.1.0") / len(versions)
        assert set(versions) == {"bot@1.0.0", "bot@1.1.0"}
        assert 0.15 <= share <= 0.25, share

        # Sticky: a key keeps its variant (header or `user`), the one its hash says.
        from lfm.serving.rollout import share_of

        for i in range(12):
            key = f"session-{i}"
            seen = {
                _ask(server, key, header=bool(i % 2))[1]["system_fingerprint"] for _ in range(4)
            }
            expected = "bot@1.1.0" if share_of(rollout_id, key) < 0.2 else "bot@1.0.0"
            assert seen == {expected}, (key, seen)

        # Without a key: the seeded draw, still about 20%.
        unkeyed = [_ask(server)[1]["system_fingerprint"] for _ in range(100)]
        assert 0.08 <= unkeyed.count("bot@1.1.0") / 100 <= 0.32

        # Feedback on an answer, recorded for the variant that gave it.
        status, body = _post(server, "/v1/feedback", {"id": answers[0][1]["id"], "rating": 1})
        assert status == 200 and body["recorded"]
        assert _post(server, "/v1/feedback", {"id": "nope", "rating": 1})[0] == 404
        assert _post(server, "/v1/feedback", {"id": answers[0][1]["id"], "rating": 7})[0] == 400
        line = json.loads(feedback.read_text().splitlines()[0])
        assert line["model"] == "bot" and line["rating"] == 1.0 and line["rollout"] == rollout_id
        assert line["variant"] == ("candidate" if versions[0] == "bot@1.1.0" else "stable")

        metrics = _get(server, "/metrics")
        candidate = versions.count("bot@1.1.0") + unkeyed.count("bot@1.1.0") + sum(
            share_of(rollout_id, f"session-{i}") < 0.2 for i in range(12)) * 4  # fmt: skip
        assert (
            f'lfm_variant_requests_total{{model="bot",status="200",variant="candidate",'
            f'version="1.1.0"}} {float(candidate)}' in metrics
        )
        assert 'lfm_variant_latency_window_seconds{model="bot",quantile="0.95"' in metrics
        assert 'lfm_rollout_weight{candidate="1.1.0",model="bot",stable="1.0.0"} 0.2' in metrics
        assert "bot#candidate" not in _get(server, "/v1/models")

        status_text = _lfm("rollout", "status", "bot", "--env", "production",
                           "--endpoint", server.url)  # fmt: skip
        assert "running" in status_text and f"candidate  1.1.0     {candidate:>8}" in status_text
        report = _lfm("rollout", "report", "bot", "--env", "production", "--endpoint", server.url)
        assert "error_rate" in report and "ahead overall" in report

        # Abort: everything back to stable at once, the environment where it was.
        _lfm("rollout", "abort", "bot", "--env", "production")
        _wait_for(lambda: _live(server) is None, what="the abort")
        ended = f"rollout {rollout_id} aborted: bot serves 1.0.0 (aborted by hand)"
        _wait_for(lambda: ended in server.log.read_text(), what="the server's line on the end")
        assert {_ask(server, f"user-{i}")[1]["system_fingerprint"] for i in range(30)} == {
            "bot@1.0.0"
        }
        assert "1.0.0" in _lfm("show", "bot@production")


def test_a_failing_candidate_is_rolled_back_with_nothing_lost(models, production, tmp_path):
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW)
    with serving(*args, cwd=tmp_path, env=production) as server:
        _lfm("rollout", "start", "bot:1.2.0", "--env", "production", "--canary", "30%",
             "--min-requests", "10", "--hold", "3600", *SLOW_OK)  # fmt: skip
        _wait_for(lambda: (_live(server) or {}).get("ready"), what="the canary")
        started = time.monotonic()
        stop = threading.Event()
        answers: list[tuple[int, dict]] = []

        def ask(worker: int) -> None:
            i = 0
            while not stop.is_set():
                answers.append(_ask(server, f"w{worker}-{i}"))
                i += 1

        with ThreadPoolExecutor(4) as pool:
            try:  # the clients stop however the block ends, or a failure would hang
                for worker in range(4):
                    pool.submit(ask, worker)
                _wait_for(lambda: _rollout().status == "rolled-back", what="the rollback")
                rolled_back = time.monotonic() - started
                time.sleep(1)
            finally:
                stop.set()
        print(f"rolled back {rolled_back:.2f}s after the canary took traffic")
        # Nothing lost: every request answered, by the stable version.
        assert answers and {status for status, _ in answers} == {200}, answers[:3]
        assert {body["system_fingerprint"] for _, body in answers} == {"bot@1.0.0"}
        ended = _rollout()
        assert "guard rail breached: error rate" in ended.reason
        assert "1.0.0" in _lfm("show", "bot@production")  # the environment where it was
        last = [e for e in _audit() if e.action.startswith("rollout-")][-1]
        assert last.action == "rollout-rollback" and "error rate" in last.detail["reason"]
        assert last.who.startswith("lfm serve")
        _wait_for(lambda: _live(server) is None, what="the candidate's unload")
        assert 'variant="candidate",version="1.2.0"' in _get(server, "/metrics")


def test_a_canary_that_holds_its_steps_is_promoted(models, production, tmp_path):
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW)
    with serving(*args, cwd=tmp_path, env=production) as server:
        _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--steps", "20,60,100",
             "--min-requests", "5", "--hold", "1", *SLOW_OK)  # fmt: skip
        stop = threading.Event()
        failures: list[tuple[int, dict]] = []

        def ask(worker: int) -> None:
            i = 0
            while not stop.is_set():
                status, body = _ask(server, f"p{worker}-{i}")
                if status != 200:
                    failures.append((status, body))
                i += 1

        with ThreadPoolExecutor(4) as pool:
            try:  # the clients stop however the block ends, or a failure would hang
                for worker in range(4):
                    pool.submit(ask, worker)
                _wait_for(lambda: _rollout().status == "promoted", 120, what="the promotion")
            finally:
                stop.set()
        assert failures == []
        actions = [e.action for e in _audit() if e.action != "serve-load"]
        tail = actions[len(actions) - actions[::-1].index("rollout-start") - 1 :]
        assert tail == ["rollout-start", "rollout-step", "rollout-step", "rollout-promote",
                        "promote"], tail  # fmt: skip
        assert "1.1.0" in _lfm("show", "bot@production")
        # The candidate took the name as loaded: every answer is 1.1.0's, none failed.
        _wait_for(lambda: _live(server) is None, what="the promotion on the server")
        assert {_ask(server, f"k{i}")[1]["system_fingerprint"] for i in range(20)} == {"bot@1.1.0"}


def test_blue_green_switches_under_load_and_back_dropping_nothing(models, production, tmp_path):
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW)
    with serving(*args, cwd=tmp_path, env=production) as server:
        stop = threading.Event()
        answers: list[tuple[int, str]] = []

        def ask(worker: int) -> None:
            i = 0
            while not stop.is_set():
                status, body = _ask(server, f"b{worker}-{i}")
                answers.append((status, body.get("system_fingerprint", body)))
                i += 1

        with ThreadPoolExecutor(6) as pool:
            for worker in range(6):
                pool.submit(ask, worker)
            try:  # a failure stops the workers too, or leaving the pool would wait on them
                time.sleep(1)
                _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--blue-green",
                     "--hold", "3600")  # fmt: skip
                switched = _wait_for(lambda: answers[-1][1] == "bot@1.1.0", what="the switch")
                time.sleep(1)
                mark = len(answers)
                time.sleep(1)
                both = {fp for _, fp in answers[mark:]}
                _lfm("rollout", "abort", "bot", "--env", "production", "--reason", "switch back")
                back = _wait_for(lambda: answers[-1][1] == "bot@1.0.0", what="the switch back")
                time.sleep(1)
            finally:
                stop.set()
        print(f"blue-green: switched {switched:.2f}s after start, back in {back:.2f}s, "
              f"{len(answers)} requests")  # fmt: skip
        assert both == {"bot@1.1.0"}  # all at once: no split once switched
        assert [a for a in answers if a[0] != 200] == []
        assert "1.0.0" in _lfm("show", "bot@production")


def test_a_candidate_the_gates_refuse_at_its_end_is_rolled_back_not_stuck(
    models, production, tmp_path
):
    """The environment became gated after the rollout began: its last step cannot promote, so
    the server routes back to stable and ends it rolled back, saying why (not a candidate that
    keeps its share and a traceback every follow interval)."""
    config = Path(production["LFM_REGISTRY_CONFIG"])
    args = (str(models.base), "--adapter", "bot=bot@production", *FOLLOW)
    try:
        with serving(*args, cwd=tmp_path, env=production) as server:
            _lfm("rollout", "start", "bot:1.1.0", "--env", "production", "--blue-green",
                 "--min-requests", "5", "--hold", "1", *SLOW_OK)  # fmt: skip
            config.write_text("require_gates: [production]\n")
            answers: list[tuple[int, dict]] = []
            started = time.monotonic()
            while _rollout().status == "running":
                assert time.monotonic() - started < 60, "the rollout never ended"
                answers.append(_ask(server, f"g{len(answers)}"))
            ended = _rollout()
            assert ended.status == "rolled-back", ended
            assert "cannot be promoted" in ended.reason and "evaluation gates" in ended.reason
            assert {status for status, _ in answers} == {200}
            _wait_for(lambda: _live(server) is None, what="the candidate's unload")
            assert {_ask(server, f"h{i}")[1]["system_fingerprint"] for i in range(10)} == {
                "bot@1.0.0"
            }
            last = [e for e in _audit() if e.action.startswith("rollout-")][-1]
            assert last.action == "rollout-rollback" and "evaluation gates" in last.detail["reason"]
            assert "Traceback" not in server.log.read_text()
        assert "1.0.0" in _lfm("show", "bot@production")
    finally:
        config.unlink(missing_ok=True)
