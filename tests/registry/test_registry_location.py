"""Which registry a command uses: flag, then LFM_REGISTRY, then the config, then the data dir."""

from pathlib import Path

import pytest
from lfm.registry.errors import RegistryError
from lfm.registry.location import settings


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    for var in ("LFM_REGISTRY", "LFM_REGISTRY_BACKEND", "LFM_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LFM_REGISTRY_CONFIG", str(tmp_path / "registry.yaml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


def test_default_is_under_the_user_data_dir(clean_env):
    found = settings()
    assert found.backend == "embedded"
    assert found.path == clean_env / "data" / "lfm" / "registry"


def test_precedence_flag_env_config(clean_env, monkeypatch):
    (clean_env / "registry.yaml").write_text("path: /from/config\n")
    assert settings().path == Path("/from/config")
    monkeypatch.setenv("LFM_REGISTRY", "/from/env")
    assert settings().path == Path("/from/env")
    assert settings("/from/flag").path == Path("/from/flag")


def test_mlflow_backend_from_config_or_flags(clean_env, monkeypatch):
    (clean_env / "registry.yaml").write_text("backend: mlflow\nuri: http://127.0.0.1:5000\n")
    assert (settings().backend, settings().uri) == ("mlflow", "http://127.0.0.1:5000")
    assert settings(uri="http://other:1").uri == "http://other:1"
    assert settings(backend="embedded").backend == "embedded"
    (clean_env / "registry.yaml").write_text("backend: mlflow\n")
    with pytest.raises(RegistryError, match="needs a tracking server"):
        settings()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert settings().uri == "http://mlflow:5000"


def test_bad_config_is_one_clear_error(clean_env):
    (clean_env / "registry.yaml").write_text("backend: [oops\n")
    with pytest.raises(RegistryError, match="not readable YAML"):
        settings()
    (clean_env / "registry.yaml").write_text("backend: s3\n")
    with pytest.raises(RegistryError, match="unknown registry backend 's3'"):
        settings()


def test_where_command(cli, registry_env):
    assert cli("registry", "where").output.strip() == f"embedded {registry_env}"


def test_without_the_registry_extra_commands_say_what_to_install(tmp_path):
    import subprocess
    import sys

    probe = (
        "import sys; sys.modules['semver'] = None\n"  # as if `pip install lfm` without [registry]
        "from lfm.cli import lfm\n"
        "lfm.main(sys.argv[1:])"
    )
    for args in (["list"], ["registry", "audit"], ["show", "x"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 1, done.stderr
        assert "pip install 'lfm[registry]'" in done.stderr
        assert "Traceback" not in done.stderr


def test_the_embedded_registry_works_without_mlflow(adapter_dir, tmp_path):
    """The default registry installs light: MLflow is the registry-mlflow extra's, and asking
    for that backend without it names the install."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.modules['mlflow'] = None\n"  # as if MLflow were not installed
        "from lfm.cli import lfm\n"
        "lfm.main(sys.argv[1:])"
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", probe, *args, "--registry", str(tmp_path / "reg")],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip

    registered = run(
        "register", "--model", str(adapter_dir), "--name", "light", "--version", "1.0.0"
    )
    assert registered.returncode == 0, registered.stderr
    assert "light" in run("list").stdout
    mlflow = subprocess.run(
        [sys.executable, "-c", probe, "list", "--backend", "mlflow", "--uri", "http://127.0.0.1:9"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert mlflow.returncode == 1 and "pip install 'lfm[registry-mlflow]'" in mlflow.stderr
    assert "Traceback" not in mlflow.stderr
