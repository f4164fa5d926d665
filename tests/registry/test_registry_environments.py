"""promote, rollback, history of moves, evaluation gates, and the audit log."""

import json
from pathlib import Path

import pytest


@pytest.fixture
def three_versions(make_adapter_copy, cli, adapter_dir, tmp_path):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        model = make_adapter_copy(adapter_dir, tmp_path / version, version)
        cli("register", "--model", str(model), "--name", "mqa", "--version", version)


def _env(cli, name, env):
    return json.loads(cli("show", f"{name}@{env}", "--json").output)["version"]


def test_promote_and_rollback_walk_back_through_history(cli, three_versions):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        cli("promote", f"mqa:{version}", "--env", "production")
    assert _env(cli, "mqa", "production") == "1.2.0"
    out = cli("rollback", "--name", "mqa", "--env", "production").output
    assert "mqa@production -> 1.1.0 (rolled back from 1.2.0)" in out
    cli("rollback", "mqa", "--env", "production")
    assert _env(cli, "mqa", "production") == "1.0.0"
    refused = cli("rollback", "mqa", "--env", "production", expect=1)
    assert "no earlier version to roll back to" in refused.output


def test_seed_rollback_to_a_named_version(cli, three_versions):
    cli("promote", "mqa:1.2.0", "--env", "production")
    cli("rollback", "--name", "mqa", "--version", "1.0.0")
    assert _env(cli, "mqa", "production") == "1.0.0"
    cli("rollback", "--name", "mqa")  # back to where the named rollback came from
    assert _env(cli, "mqa", "production") == "1.2.0"


def test_environments_are_independent_and_show_in_list(cli, three_versions):
    cli("promote", "mqa:1.2.0", "--env", "staging")
    cli("promote", "mqa:1.1.0", "--env", "production")
    listed = {r["version"]: r["environments"] for r in json.loads(cli("list", "--json").output)}
    assert listed == {"1.0.0": [], "1.1.0": ["production"], "1.2.0": ["staging"]}
    again = cli("promote", "mqa:1.1.0", "--env", "production").output
    assert "already points at 1.1.0" in again


def test_history_records_every_move(cli, three_versions):
    cli("promote", "mqa:1.0.0", "--env", "production")
    cli("promote", "mqa:1.1.0", "--env", "production", "--reason", "better mmlu")
    cli("rollback", "mqa")
    history = json.loads(cli("show", "mqa:1.0.0", "--json").output)["history"]
    assert [(m["action"], m["from_version"], m["to_version"]) for m in history] == [
        ("promote", None, "1.0.0"),
        ("promote", "1.0.0", "1.1.0"),
        ("rollback", "1.1.0", "1.0.0"),
    ]
    assert history[1]["reason"] == "better mmlu"
    assert all(m["who"] == "tester" and m["at"].endswith("Z") for m in history)
    assert "production: 1.0.0 -> 1.1.0" in cli("show", "mqa:1.0.0").output


def test_audit_log_has_who_when_what_from_to(cli, three_versions):
    cli("promote", "mqa:1.0.0", "--env", "staging")
    cli("promote", "mqa:1.1.0", "--env", "staging")
    entries = json.loads(cli("registry", "audit", "--json").output)
    assert [e["action"] for e in entries] == ["register"] * 3 + ["promote"] * 2
    last = entries[-1]
    assert (last["who"], last["env"], last["from_value"], last["to_value"]) == (
        "tester",
        "staging",
        "1.0.0",
        "1.1.0",
    )
    assert entries[0]["detail"]["manifest_sha256"]
    text = cli("registry", "audit", "mqa").output
    assert "promote  mqa:1.1.0@staging 1.0.0 -> 1.1.0" in text


def test_gates_must_pass_when_required(make_adapter_copy, cli, bundle_dir, adapter_dir, tmp_path):
    cli("register", "--model", str(bundle_dir / "output"), "--name", "g", "--version", "1.0.0")
    cli("promote", "g:1.0.0", "--env", "production", "--require-gates")  # gates passed
    failing = tmp_path / "eval_results.json"
    failing.write_text(json.dumps({"gates": {"max_perplexity": {"passed": False}}}))
    model = make_adapter_copy(adapter_dir, tmp_path / "m2", "2")
    cli(
        "register",
        "--model",
        str(model),
        "--name",
        "g",
        "--version",
        "1.1.0",
        "--performance-metrics",
        str(failing),
    )
    refused = cli("promote", "g:1.1.0", "--env", "production", "--require-gates", expect=1)
    assert "evaluation gate(s) failed: max_perplexity" in refused.output
    model3 = make_adapter_copy(adapter_dir, tmp_path / "m3", "3")
    cli("register", "--model", str(model3), "--name", "g", "--version", "1.2.0")
    assert (
        "no evaluation gates are recorded"
        in cli("promote", "g:1.2.0", "--env", "production", "--require-gates", expect=1).output
    )
    assert _env(cli, "g", "production") == "1.0.0"
    cli("promote", "g:1.1.0", "--env", "staging")  # no gates asked for


def test_configured_environments_and_gates(cli, three_versions, tmp_path, monkeypatch):
    config = tmp_path / "registry.yaml"
    config.write_text("environments: [canary, prod]\nrequire_gates: [prod]\n")
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(config))
    cli("promote", "mqa:1.0.0", "--env", "canary")
    assert (
        "unknown environment 'production'"
        in cli("promote", "mqa:1.0.0", "--env", "production", expect=1).output
    )
    assert "no evaluation gates" in cli("promote", "mqa:1.0.0", "--env", "prod", expect=1).output
    config.write_text("enviroments: [x]\n")
    assert "unknown key(s) enviroments" in cli("list", expect=1).output


def test_gates_of_an_lfm_evaluation_in_the_models_eval_folder(
    make_adapter_copy, cli, adapter_dir, tmp_path
):
    """`lfm evaluate` and evaluate.py write MODEL/eval/eval_results.json, gates as a list of
    {gate, passed}: register finds it there and promote names the gate that failed."""

    def evaluated(name: str, passed: bool) -> Path:
        model = make_adapter_copy(adapter_dir, tmp_path / name, name)
        (model / "eval").mkdir()
        gates = [
            {"gate": "max_perplexity", "bound": 400, "value": 222.2, "passed": True},
            {"gate": "min_improvement.f1", "bound": 0.1, "value": 0.02, "passed": passed},
        ]
        results = {"evaluation_results": {"metrics": {"f1": {"value": 0.4}}, "gates": gates}}
        (model / "eval" / "eval_results.json").write_text(json.dumps(results))
        return model

    cli("register", "--model", str(evaluated("ok", True)), "--name", "e", "--version", "1.0.0")
    cli("promote", "e:1.0.0", "--env", "production", "--require-gates")
    cli("register", "--model", str(evaluated("bad", False)), "--name", "e", "--version", "1.1.0")
    refused = cli("promote", "e:1.1.0", "--env", "production", "--require-gates", expect=1)
    assert "evaluation gate(s) failed: min_improvement.f1" in refused.output
    assert _env(cli, "e", "production") == "1.0.0"


def test_rollback_obeys_the_gates_of_the_environment(
    make_adapter_copy, cli, adapter_dir, tmp_path, monkeypatch
):
    """Every way into an environment checks the same rules: rollback --version and a plain
    rollback cannot put a gate-failing version where gates are required."""
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps({"gates": {"max_perplexity": {"passed": False}}}))
    passing = tmp_path / "passing.json"
    passing.write_text(json.dumps({"gates": {"max_perplexity": {"passed": True}}}))
    for version, results in (("1.0.0", failing), ("1.1.0", passing), ("1.2.0", passing)):
        model = make_adapter_copy(adapter_dir, tmp_path / version, version)
        args = ["--name", "rb", "--version", version, "--performance-metrics", str(results)]
        cli("register", "--model", str(model), *args)
    cli("promote", "rb:1.0.0", "--env", "production")  # not gated yet
    cli("promote", "rb:1.1.0", "--env", "production")
    config = tmp_path / "registry.yaml"
    config.write_text("require_gates: [production]\n")
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(config))
    refused = cli("rollback", "rb", "--env", "production", "--version", "1.0.0", expect=1)
    assert "cannot promote rb:1.0.0 to production" in refused.output
    assert "max_perplexity" in refused.output
    plain = cli("rollback", "rb", "--env", "production", expect=1)  # back to 1.0.0: refused
    assert "evaluation gate(s) failed" in plain.output
    assert _env(cli, "rb", "production") == "1.1.0"


def test_a_damaged_database_is_one_line_naming_the_checks(cli, registry_env, adapter_dir):
    cli("register", "--model", str(adapter_dir), "--name", "d", "--version", "1.0.0")
    database = next(registry_env.rglob("*.db"))
    database.write_bytes(b"this is not a database" * 100)
    done = cli("list", expect=1)
    assert "is damaged" in done.output and "lfm registry verify" in done.output
    assert "Traceback" not in done.output


def test_a_guarded_rollback_refuses_when_the_environment_moved(cli, three_versions, registry_env):
    """What a confirmation page showed is what happens: a second click (the environment no
    longer points at the version the page saw) changes nothing."""
    from lfm.registry import MovedMeanwhile, open_registry

    for version in ("1.0.0", "1.1.0", "1.2.0"):
        cli("promote", f"mqa:{version}", "--env", "production")
    store = open_registry()
    try:
        move = store.rollback(
            "mqa", "production", expected="1.2.0", expected_target="1.1.0", reason="ui, key:ab"
        )
        assert (move.from_version, move.to_version, move.reason) == ("1.2.0", "1.1.0", "ui, key:ab")
        with pytest.raises(MovedMeanwhile, match="now points at 1.1.0, not 1.2.0"):
            store.rollback("mqa", "production", expected="1.2.0", expected_target="1.1.0")
        with pytest.raises(MovedMeanwhile, match="would now go to 1.0.0, not 1.1.0"):
            store.rollback("mqa", "production", expected="1.1.0", expected_target="1.1.0")
        assert "production" in store.list_versions("mqa")[1].environments  # 1.1.0 still
        audit = store.audit("mqa")[-1]
        assert (audit.action, audit.detail) == ("rollback", {"reason": "ui, key:ab"})
    finally:
        store.close()
    history = json.loads(cli("show", "mqa:1.0.0", "--json").output)["history"]
    assert [m["action"] for m in history] == ["promote"] * 3 + ["rollback"]
