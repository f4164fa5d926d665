"""What a config sends out of the machine (issue 17, class 3): API keys only from *_API_KEY
variables, plain http only to loopback unless the user allows the host, and no credential from a
URL (user:password@, a webhook URL) written into any file of the bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config
from lfm.runtime import endpoints
from ruamel.yaml import YAML

CONFIG = """\
model_config:
  name: sender
  base_model: ./model
  dataset:
    source: {{type: documents, path: ./docs}}
    preprocessing:
      qa_generation: {{model: gen, base_url: "{base_url}", api_key_env: {key}}}
  monitoring:
    mlflow_tracking_uri: "{mlflow}"
    alerting: {{webhook_url: "{webhook}"}}
"""
SAFE = {
    "base_url": "https://gen.example.com/v1",
    "key": "GEN_API_KEY",
    "mlflow": "https://mlflow.example.com",
    "webhook": "https://hooks.example.com/services/T0/B0/WEBHOOKSECRET",
}


@pytest.fixture(autouse=True)
def _nothing_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(endpoints.ALLOW_HTTP_ENV, raising=False)
    monkeypatch.delenv(endpoints.WEBHOOK_ENV, raising=False)


def _config(write_config, **changes: str) -> Path:
    Path("docs").mkdir(exist_ok=True)
    Path("model").mkdir(exist_ok=True)
    return write_config(CONFIG.format(**{**SAFE, **changes}))


def _errors(write_config, **changes: str) -> list[str]:
    with pytest.raises(CompileError) as raised:
        analyze(_config(write_config, **changes))
    return [d.message for d in raised.value.diagnostics if d.level == "error"]


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "HOME", "my_api_key"])
def test_only_api_key_variables_may_be_sent(write_config, name: str) -> None:
    (message,) = _errors(write_config, key=name)
    assert "*_API_KEY" in message


@pytest.mark.parametrize(
    ("setting", "url"),
    [("base_url", "http://gen.example.com/v1"), ("webhook", "http://hooks.example.com/x")],
)
def test_plain_http_to_another_machine_needs_the_users_flag(
    write_config, monkeypatch: pytest.MonkeyPatch, setting: str, url: str
) -> None:
    (message,) = _errors(write_config, **{setting: url})
    assert "plain http" in message and "--allow-http" in message
    monkeypatch.setenv(endpoints.ALLOW_HTTP_ENV, "other.example.com")
    assert _errors(write_config, **{setting: url}) == [message]  # another host: still refused
    monkeypatch.setenv(endpoints.ALLOW_HTTP_ENV, endpoints.host(url))
    analyze(_config(write_config, **{setting: url}))


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "http://127.0.0.1:8000/v1"])
def test_plain_http_to_this_machine_is_fine(write_config, url: str) -> None:
    analyze(_config(write_config, base_url=url))


def test_the_allow_http_flag_is_the_users_say_so(write_config) -> None:
    config = str(_config(write_config, base_url="http://gen.lan:8000/v1"))
    refused = CliRunner().invoke(lfm, ["validate", config])
    assert refused.exit_code == 1 and "LFM_ALLOW_HTTP=gen.lan" in refused.output
    allowed = CliRunner().invoke(lfm, ["validate", config, "--allow-http", "gen.lan"])
    assert allowed.exit_code == 0, allowed.output


def test_a_password_in_the_generator_url_is_refused(write_config) -> None:
    (message,) = _errors(write_config, base_url="https://me:pw@gen.example.com/v1")
    assert "user:password@" in message


def test_no_credential_reaches_a_file_of_the_bundle(write_config) -> None:
    config = _config(write_config, mlflow="https://alice:hunter2@mlflow.example.com")
    config.write_text(config.read_text() + "  deployment: {target: kubernetes}\n")
    result = compile_config(config, "bundle")
    leaked = [name for name, text in result.files.items() if "hunter2" in text]
    leaked += [name for name, text in result.files.items() if "WEBHOOKSECRET" in text]
    assert leaked == []
    assert 'MLFLOW_TRACKING_URI", "https://mlflow.example.com"' in result.files["train.py"]
    warned = [d.message for d in result.analysis.diagnostics if d.level == "warning"]
    assert any("MLFLOW_TRACKING_PASSWORD" in message for message in warned)
    decisions = {d["path"]: d for d in json.loads(result.files["lfm.lock.json"])["decisions"]}
    assert decisions["model_config.monitoring.alerting.webhook_url"]["value"] == (
        "$LFM_ALERT_WEBHOOK_URL"
    )
    # On the cluster the training pod reads it from a Secret.
    pod = YAML(typ="safe").load(result.files["k8s/job.yaml"])["spec"]["template"]["spec"]
    [webhook] = [e for e in pod["containers"][0]["env"] if e["name"] == endpoints.WEBHOOK_ENV]
    assert webhook["valueFrom"]["secretKeyRef"] == {
        "name": "sender-alerts",
        "key": "webhook-url",
        "optional": True,
    }


def test_a_password_over_plain_http_is_refused(write_config) -> None:
    (message,) = _errors(write_config, mlflow="http://alice:hunter2@mlflow.lan:5000")
    assert "plain http" in message and "hunter2" not in message


def test_lfm_train_hands_the_webhook_to_the_run(write_config, monkeypatch) -> None:
    from lfm.cli.train import _run_environment

    analysis = analyze(_config(write_config))
    assert _run_environment(analysis)[endpoints.WEBHOOK_ENV] == SAFE["webhook"]
    monkeypatch.setenv(endpoints.WEBHOOK_ENV, "https://hooks.example.com/mine")
    assert _run_environment(analysis)[endpoints.WEBHOOK_ENV].endswith("/mine")  # the user's wins


def test_the_generator_checks_again_where_it_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """--base-url and --api-key-env reach the client without the compiler's rules."""
    from lfm.dataset import DatasetError
    from lfm.dataset.generators.base import GenerationSettings
    from lfm.dataset.generators.openai_client import OpenAIClient

    def client(url: str, key: str | None = None) -> OpenAIClient:
        settings = GenerationSettings("openai", "gen", base_url=url, api_key_env=key)
        return OpenAIClient.from_settings(settings)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    with pytest.raises(DatasetError, match=r"\*_API_KEY"):
        client("https://gen.example.com/v1", "AWS_SECRET_ACCESS_KEY")
    with pytest.raises(DatasetError, match="plain http"):
        client("http://gen.example.com/v1")
    with pytest.raises(DatasetError, match="user:password@"):
        client("https://a:b@gen.example.com/v1")
    assert client("http://127.0.0.1:9/v1").url == "http://127.0.0.1:9/v1/chat/completions"
    monkeypatch.setenv(endpoints.ALLOW_HTTP_ENV, "*")
    client("http://gen.example.com/v1")


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://u:p@host:5000/x?y=1", "https://host:5000/x?y=1"),
        ("https://host/x", "https://host/x"),
        ("https://u@[::1]:8/", "https://[::1]:8/"),
        ("http://u:p@host:99999/x", "http://host:99999/x"),  # too broken to parse: still found
        ("https://host/a@b", "https://host/a@b"),  # an "@" in the path is no user
    ],
)
def test_credentials_come_out_of_urls(url: str, clean: str) -> None:
    assert endpoints.url_without_credentials(url) == clean
    assert not endpoints.has_credentials(clean)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost/x", True),
        ("http://127.0.0.2:1", True),
        ("http://[::1]:8000", True),
        ("http://localhost.example.com", False),
        ("http://10.0.0.1", False),
        ("http://127.0.0.1.example.com", False),
    ],
)
def test_loopback_is_this_machine_only(url: str, loopback: bool) -> None:
    assert endpoints.loopback(url) is loopback
