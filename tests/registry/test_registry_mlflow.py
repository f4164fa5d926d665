"""The same commands against a real `mlflow server` (SQLite backend store) on loopback."""

import json

import pytest
from click.testing import CliRunner
from mlflow_server import start_mlflow, stop_mlflow

pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # the server takes 15-30 s to start on a small machine


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    server, uri = start_mlflow(root)
    yield uri, root / "artifacts"
    stop_mlflow(server)


@pytest.fixture
def mcli(mlflow_server, monkeypatch, tmp_path):
    uri, _ = mlflow_server
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(tmp_path / "registry.yaml"))
    monkeypatch.setenv("LFM_USER", "mlflow-tester")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LFM_REGISTRY", raising=False)
    from lfm.cli import lfm

    def run(*args, expect=0):
        result = CliRunner().invoke(lfm, [*args, "--backend", "mlflow", "--uri", uri])
        if expect is not None:
            assert result.exit_code == expect, result.output
        return result

    return run


def _show(mcli, ref):
    return json.loads(mcli("show", ref, "--json").output)


def test_register_list_show_with_lineage(
    make_adapter_copy, mcli, bundle_dir, adapter_dir, tmp_path
):
    out = mcli(
        "register",
        "--model",
        str(bundle_dir / "output"),
        "--name",
        "mqa",
        "--version",
        "1.2.0",
        "--tag",
        "domain=medical",
    ).output
    assert "registered mqa:1.2.0 (adapter" in out and "View run" not in out
    shown = _show(mcli, "mqa:1.2.0")
    assert shown["lineage"]["method"] == "lora"
    assert shown["lineage"]["method_params"]["r"] == 8
    assert shown["lineage"]["config_sha256"]
    assert shown["metrics"]["benchmarks.mmlu.accuracy"] == 0.72
    assert shown["gates"] == {"max_perplexity": True}
    assert shown["tags"] == {"domain": "medical"}
    assert shown["created_by"] == "mlflow-tester"
    other = make_adapter_copy(adapter_dir, tmp_path / "o", "o")
    mcli("register", "--model", str(other), "--name", "mqa", "--version", "1.10.0")
    listed = json.loads(mcli("list", "mqa", "--json").output)
    assert [r["version"] for r in listed] == ["1.2.0", "1.10.0"]
    medical = json.loads(mcli("list", "--filter", "domain=medical", "--json").output)
    assert [(r["name"], r["version"]) for r in medical] == [("mqa", "1.2.0")]
    # immutable: same content is a no-op, different content an error
    again = mcli(
        "register", "--model", str(bundle_dir / "output"), "--name", "mqa", "--version", "1.2.0"
    )
    assert "identical content" in again.output
    refused = mcli(
        "register", "--model", str(other), "--name", "mqa", "--version", "1.2.0", expect=1
    )
    assert "already registered with different content" in refused.output


def test_versions_and_aliases_are_mlflows_own(
    make_adapter_copy, mcli, mlflow_server, adapter_dir, tmp_path
):
    from mlflow import MlflowClient

    for v in ("1.0.0", "1.1.0"):
        mcli(
            "register",
            "--model",
            str(make_adapter_copy(adapter_dir, tmp_path / v, v)),
            "--name",
            "aliased",
            "--version",
            v,
        )
    mcli("promote", "aliased:1.1.0", "--env", "production")
    client = MlflowClient(tracking_uri=mlflow_server[0], registry_uri=mlflow_server[0])
    by_alias = client.get_model_version_by_alias("aliased", "production")
    assert by_alias.tags["lfm.version"] == "1.1.0"
    assert by_alias.tags["lfm.type"] == "adapter"


def test_promote_rollback_history_audit(make_adapter_copy, mcli, adapter_dir, tmp_path):
    for v in ("2.0.0", "2.1.0", "2.2.0"):
        mcli(
            "register",
            "--model",
            str(make_adapter_copy(adapter_dir, tmp_path / v, v)),
            "--name",
            "envs",
            "--version",
            v,
        )
    for v in ("2.0.0", "2.1.0", "2.2.0"):
        mcli("promote", f"envs:{v}", "--env", "production")
    assert _show(mcli, "envs@production")["version"] == "2.2.0"
    assert "-> 2.1.0 (rolled back from 2.2.0)" in mcli("rollback", "envs").output
    mcli("rollback", "envs")
    assert _show(mcli, "envs@production")["version"] == "2.0.0"
    assert "no earlier version" in mcli("rollback", "envs", expect=1).output
    history = _show(mcli, "envs:2.0.0")["history"]
    assert [(m["action"], m["to_version"]) for m in history][-2:] == [
        ("rollback", "2.1.0"),
        ("rollback", "2.0.0"),
    ]
    audit = json.loads(mcli("registry", "audit", "envs", "--json").output)
    assert [e["action"] for e in audit].count("promote") == 3
    assert audit[-1]["from_value"] == "2.1.0" and audit[-1]["who"] == "mlflow-tester"
    assert (
        "no evaluation gates"
        in mcli("promote", "envs:2.1.0", "--env", "staging", "--require-gates", expect=1).output
    )


def test_pull_verifies_and_refuses_a_corrupted_artifact(
    make_adapter_copy, mcli, mlflow_server, adapter_dir, tmp_path
):
    model = make_adapter_copy(adapter_dir, tmp_path / "p", "p")
    mcli("register", "--model", str(model), "--name", "pulled", "--version", "1.0.0")
    mcli("pull", "pulled:1.0.0", "--to", str(tmp_path / "out"))
    assert (tmp_path / "out" / "README.md").read_text() == "adapter p\n"
    from lfm.registry import resolve

    found = resolve("pulled:1.0.0", backend="mlflow", uri=mlflow_server[0])
    assert (found.path / "adapter_model.safetensors").read_bytes() == (
        model / "adapter_model.safetensors"
    ).read_bytes()
    # damage the stored artifact on the server's disk
    stored = [
        p
        for p in mlflow_server[1].rglob("adapter_model.safetensors")
        if (p.parent / "README.md").read_text() == "adapter p\n"
    ]
    assert len(stored) == 1
    stored[0].write_bytes(b"not the weights")
    result = mcli("pull", "pulled:1.0.0", "--to", str(tmp_path / "bad"), expect=1)
    assert "corrupted" in result.output and not (tmp_path / "bad").exists()
    assert "corrupted" in mcli("show", "pulled:1.0.0", "--verify", expect=1).output


def test_clean_errors(mcli, tmp_path):
    assert "no model named 'ghost'" in mcli("show", "ghost", expect=1).output
    assert "bad version" in mcli("pull", "ghost:1", expect=1).output


def test_mlflow_access_control_applies_to_lfm_commands(tmp_path_factory, adapter_dir, monkeypatch):
    """With MLflow's basic-auth app, a reader can list and pull but not promote or register."""
    pytest.importorskip("flask_wtf")
    root = tmp_path_factory.mktemp("mlflow-auth")
    (root / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        "admin_username = admin\nadmin_password = admin-password-1234\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    server, uri = start_mlflow(
        root,
        "--app-name",
        "basic-auth",
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret",
        },
    )
    try:
        from lfm.cli import lfm

        monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(root / "none.yaml"))

        def as_user(user, password, *args):
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
            return CliRunner().invoke(lfm, [*args, "--backend", "mlflow", "--uri", uri])

        admin = ("admin", "admin-password-1234")
        done = as_user(
            *admin,
            "register",
            "--model",
            str(adapter_dir),
            "--name",
            "secure",
            "--version",
            "1.0.0",
        )
        assert done.exit_code == 0, done.output
        from mlflow.server import get_app_client

        get_app_client("basic-auth", tracking_uri=uri).create_user(
            username="viewer", password="viewer-password-1234"
        )
        viewer = ("viewer", "viewer-password-1234")
        assert "secure" in as_user(*viewer, "list").output
        pulled = as_user(*viewer, "pull", "secure", "--to", str(root / "pulled"))
        assert pulled.exit_code == 0, pulled.output
        denied = as_user(*viewer, "promote", "secure:1.0.0", "--env", "production")
        assert denied.exit_code == 1 and "Permission denied" in denied.output
        assert "MLflow's access control" in denied.output
        assert len(denied.output.strip().splitlines()) == 1
        refused = as_user(
            *viewer,
            "register",
            "--model",
            str(adapter_dir),
            "--name",
            "secure",
            "--version",
            "1.1.0",
            "--type",
            "full",
        )
        assert refused.exit_code == 1 and "Permission denied" in refused.output
        done = as_user(*admin, "promote", "secure:1.0.0", "--env", "production")
        assert done.exit_code == 0, done.output
    finally:
        stop_mlflow(server)


def test_links_out_of_the_model_folder_never_reach_the_server(
    make_adapter_copy, mcli, mlflow_server, adapter_dir, tmp_path
):
    from hostile_links import holds_secret, plant_links

    model = make_adapter_copy(adapter_dir, tmp_path / "m", "links")
    plant_links(model, tmp_path / "outside")
    done = mcli("register", "--model", str(model), "--name", "linked", "--version", "1.0.0")
    assert f"warning: skipped {model / 'passwd.txt'}" in done.stderr
    assert holds_secret(mlflow_server[1]) == []
    mcli("pull", "linked:1.0.0", "--to", str(tmp_path / "out"))
    assert holds_secret(tmp_path / "out") == []
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
