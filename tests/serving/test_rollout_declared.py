"""A rollout declared in the config (deployment.rollout): compiled into the bundle's lock with
its defaults and reasons, and started from the bundle by `lfm rollout start --from`, options
given on the command line overriding it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm

pytest.importorskip("semver")


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(lfm, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


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


def bundle(tmp_path: Path, rollout: str, *, version: str = "1.1.0") -> Path:
    """A compiled bundle of bot VERSION whose config declares ``rollout`` (YAML, indented)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "data.jsonl").write_text('{"instruction": "hi", "output": "hello"}\n')
    config = tmp_path / "bot.yaml"
    config.write_text(
        "model_config:\n"
        "  name: bot\n"
        f"  version: {version}\n"
        "  base_model: ./tiny\n"
        "  fine_tuning: {method: lora}\n"
        "  dataset: {source: {type: local, path: ./data.jsonl}}\n"
        "  deployment:\n"
        "    rollout:\n" + rollout
    )
    (tmp_path / "tiny").mkdir(exist_ok=True)
    out = tmp_path / "bundle"
    run("compile", str(config), "-o", str(out))
    return out


def _lock_rollout(out: Path) -> dict:
    return json.loads((out / "lfm.lock.json").read_text())["model_config"]["deployment"]["rollout"]


def test_the_declared_rollout_is_resolved_with_its_reasons(tmp_path):
    out = bundle(tmp_path, "      strategy: canary\n      guard_rails: {max_p95_ratio: 1.5}\n")
    rollout = _lock_rollout(out)
    assert rollout["steps"] == [10, 50, 100] and rollout["hold"] == 300
    assert rollout["guard_rails"] == {
        "min_requests": 20, "window": 300, "max_error_rate_increase": "5%",
        "max_p95_ratio": 1.5, "max_rating_drop": 0.1,
    }  # fmt: skip
    explained = run("explain", str(tmp_path / "bot.yaml"))
    assert "deployment.rollout.steps" in explained and "--canary 10%" in explained
    # Not on Kubernetes: no manifests of the rollout.
    assert not (out / "k8s").exists()


def test_without_the_block_there_is_no_rollout_in_the_lock(tmp_path, models):
    (tmp_path / "data.jsonl").write_text('{"instruction": "hi", "output": "hello"}\n')
    config = tmp_path / "plain.yaml"
    config.write_text(
        "model_config:\n  name: bot\n  version: 1.1.0\n  base_model: ./tiny\n"
        "  fine_tuning: {method: lora}\n  dataset: {source: {type: local, path: ./data.jsonl}}\n"
    )
    (tmp_path / "tiny").mkdir()
    run("compile", str(config), "-o", str(tmp_path / "plain"))
    lock = json.loads((tmp_path / "plain" / "lfm.lock.json").read_text())
    assert "rollout" not in lock["model_config"].get("deployment", {})


def test_start_from_a_bundle_takes_its_rollout_and_its_name_and_version(registry, tmp_path):
    out = bundle(tmp_path, "      strategy: canary\n      steps: [5, 25, 100]\n      hold: 60\n"
                 "      guard_rails: {min_requests: 7, max_error_rate_increase: 2%}\n")  # fmt: skip
    said = run("rollout", "start", "--env", "production", "--from", str(out))
    assert "canary of bot@production 1.0.0 -> 1.1.0 at 5% -> 25% -> 100%" in said
    started = _latest()
    assert started.hold_s == 60 and started.guards.min_requests == 7
    assert started.guards.max_error_rate_increase == 0.02 and started.guards.window_s == 300


def test_options_given_override_the_bundle(registry, tmp_path):
    out = bundle(tmp_path, "      strategy: canary\n      hold: 60\n"
                 "      guard_rails: {min_requests: 7, window: 120}\n")  # fmt: skip
    said = run("rollout", "start", "bot:1.1.0", "--env", "production", "--from", str(out),
               "--ab", "70/30", "--min-requests", "40", "--seed", "3")  # fmt: skip
    assert "ab of bot@production 1.0.0 -> 1.1.0 at 30%" in said
    started = _latest()
    assert started.strategy == "ab" and started.seed == 3 and started.hold_s == 60
    assert started.guards.min_requests == 40 and started.guards.window_s == 120


def test_blue_green_and_ab_from_a_bundle(registry, tmp_path):
    out = bundle(tmp_path / "bg", "      strategy: blue_green\n")
    assert "blue-green of bot@production" in run(
        "rollout", "start", "--env", "production", "--from", str(out)
    )
    run("rollout", "abort", "bot", "--env", "production")
    out = bundle(tmp_path / "ab", '      strategy: ab\n      split: "80/20"\n')
    assert "at 20%" in run("rollout", "start", "--env", "production", "--from", str(out))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--from", "nowhere"), "not a compiled bundle"),
        ((), "give NAME:VERSION, or --from BUNDLE"),
    ],
)
def test_bad_uses_of_from_are_one_line_errors(registry, args, words):
    out = run("rollout", "start", "--env", "production", *args, code=1 if args else 2)
    assert words in out


def test_a_bundle_without_a_rollout_says_so(registry, tmp_path):
    (tmp_path / "data.jsonl").write_text('{"instruction": "hi", "output": "hello"}\n')
    (tmp_path / "tiny").mkdir()
    config = tmp_path / "plain.yaml"
    config.write_text(
        "model_config:\n  name: bot\n  version: 1.1.0\n  base_model: ./tiny\n"
        "  fine_tuning: {method: lora}\n  dataset: {source: {type: local, path: ./data.jsonl}}\n"
    )
    run("compile", str(config), "-o", str(tmp_path / "plain"))
    out = run("rollout", "start", "--env", "production", "--from", str(tmp_path / "plain"), code=1)
    assert "declares no rollout (deployment.rollout)" in out
    # A strategy given here is enough, with NAME:VERSION from the bundle.
    said = run("rollout", "start", "--env", "production", "--from", str(tmp_path / "plain"),
               "--blue-green")  # fmt: skip
    assert "blue-green of bot@production 1.0.0 -> 1.1.0" in said


def test_a_declared_stable_version_must_be_what_the_environment_serves(registry, tmp_path):
    out = bundle(tmp_path, "      strategy: canary\n      stable_version: 0.9.0\n")
    said = run("rollout", "start", "--env", "production", "--from", str(out), code=1)
    assert "bot@production points at 1.0.0, but the rollout declares stable_version 0.9.0" in said
    assert "set stable_version: 1.0.0 and recompile" in said
    assert "lfm promote bot:0.9.0 --env production" in said and said.count("\n") == 1
    assert _latest() is None  # nothing started
    out = bundle(tmp_path / "right", "      strategy: canary\n      stable_version: 1.0.0\n")
    assert "1.0.0 -> 1.1.0" in run("rollout", "start", "--env", "production", "--from", str(out))


def test_a_bundle_other_than_the_registered_one_is_named_in_a_warning(registry, models, tmp_path):
    trained = bundle(tmp_path, "      strategy: canary\n", version="1.2.0")
    run("register", "--model", str(models.two), "--bundle", str(trained))
    said = run("rollout", "start", "--env", "production", "--from", str(trained))
    assert "warning" not in said and "1.0.0 -> 1.2.0" in said
    run("rollout", "abort", "bot", "--env", "production")
    # Recompiled with other rollout settings: the hashes the registry recorded differ.
    other = bundle(tmp_path / "tuned", "      strategy: canary\n      hold: 60\n", version="1.2.0")
    said = run("rollout", "start", "--env", "production", "--from", str(other))
    assert "warning: bot:1.2.0 was registered from another build than" in said
    assert "config_sha256" in said and "bundle_sha256" in said and "1.0.0 -> 1.2.0" in said


def _latest():
    from lfm.registry import open_registry, rollouts

    store = open_registry()
    try:
        return rollouts.latest(store, "bot", "production")
    finally:
        store.close()
