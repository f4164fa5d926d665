"""An adapter is served only on the base model it was trained on: two tiny models of the same
shape (same config but other weights, or the same weights but another eos id) are told apart,
by the adapter's recorded folder or by the fingerprint the registry recorded of its base, while
copies of the base (a moved folder, the registry's verified checkout, a hub id served from a
folder of that name) still serve it."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from lfm.cli import lfm
from lfm_server import serving

pytest.importorskip("semver")

from lfm.serving.adapters import AdapterError, ServedBase, check_adapter  # noqa: E402


@dataclass(frozen=True)
class Bases:
    root: Path
    twin: Path  # the served base's config, other weights
    other_eos: Path  # the served base's weights, another eos id
    copy: Path  # the served base, copied elsewhere


def _lora(base: Path, out: Path, seed: int = 1) -> Path:
    """A LoRA adapter on ``base``; peft records ``base`` as base_model_name_or_path."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


def _recorded_base(adapter: Path, base: str) -> Path:
    """``adapter`` saying it was trained on ``base`` (what peft writes on another machine)."""
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "base_model_name_or_path": base}))
    return adapter


@pytest.fixture(scope="module")
def bases(models, tmp_path_factory: pytest.TempPathFactory) -> Bases:
    from lfm.runtime.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("bases")
    twin = build_tiny_model(root / "twin", chat_template=True, seed=7, pretrain_steps=0)
    assert json.loads((twin / "config.json").read_text()) == json.loads(
        (models.base / "config.json").read_text()
    )  # the same shape and ids: only the weights differ
    other_eos = Path(shutil.copytree(models.base, root / "other-eos"))
    config = json.loads((other_eos / "config.json").read_text())
    (other_eos / "config.json").write_text(
        json.dumps({**config, "eos_token_id": config["eos_token_id"] + 1})
    )
    copy = Path(shutil.copytree(models.base, root / "copy" / models.base.name))
    return Bases(root, twin, other_eos, copy)


def _served(folder: Path, reference: str | None = None) -> ServedBase:
    config = json.loads((folder / "config.json").read_text())
    return ServedBase(reference or str(folder), folder, config)


def test_an_adapter_of_a_same_shape_model_with_other_weights_is_refused(models, bases):
    adapter = _lora(bases.twin, bases.root / "on-twin")
    with pytest.raises(AdapterError, match="same config.json but other weights") as refused:
        check_adapter(adapter, _served(models.base))
    assert f"was trained on {bases.twin}" in str(refused.value)
    assert f"this server serves {models.base}" in str(refused.value)


def test_an_adapter_of_a_model_with_another_eos_id_is_refused(models, bases):
    adapter = _lora(bases.other_eos, bases.root / "on-other-eos")
    with pytest.raises(AdapterError, match="config.json differ: eos_token_id"):
        check_adapter(adapter, _served(models.base))


def test_copies_of_the_base_still_serve_its_adapters(models, bases):
    assert check_adapter(models.one, _served(bases.copy)) == 4  # a moved folder
    hub = _recorded_base(_lora(models.base, bases.root / "on-hub"), f"org/{models.base.name}")
    assert check_adapter(hub, _served(models.base)) == 4  # a hub id served from its folder
    _recorded_base(hub, "org/another-model")
    with pytest.raises(AdapterError, match="the names differ"):
        check_adapter(hub, _served(models.base))


def test_with_nothing_naming_the_base_its_shape_is_checked(models, bases):
    adapter = _recorded_base(_lora(models.base, bases.root / "unnamed"), "")
    assert check_adapter(adapter, _served(models.base)) == 4
    config = json.loads((models.base / "config.json").read_text())
    deeper = {**config, "num_hidden_layers": config["num_hidden_layers"] + 2}
    with pytest.raises(AdapterError, match="weights cover 2 layers, and the served model has 4"):
        check_adapter(adapter, ServedBase("deeper", None, deeper))


def _run(*args: str) -> str:
    result = CliRunner().invoke(lfm, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def registry(tmp_path: Path, monkeypatch) -> dict[str, str]:
    env = {
        "LFM_REGISTRY": str(tmp_path / "store"),
        "LFM_REGISTRY_CONFIG": str(tmp_path / "none.yaml"),
        "LFM_USER": "tester",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_registry_records_the_base_and_a_server_compares_it(models, bases, registry):
    from lfm.registry import resolve

    # Trained on a copy of the twin that is gone since: only the fingerprint can tell.
    gone = Path(shutil.copytree(bases.twin, bases.root / "gone" / models.base.name))
    on_gone = _lora(gone, bases.root / "on-gone")
    _run("register", "--model", str(on_gone), "--name", "bot", "--version", "1.0.0")
    _run("register", "--model", str(models.one), "--name", "bot", "--version", "1.1.0")
    shutil.rmtree(gone)
    base = ("--name", "tinybase", "--version", "1.0.0", "--type", "full")
    _run("register", "--model", str(models.base), *base)
    checkout = resolve("tinybase:1.0.0").path  # the registry's verified copy of the base
    served = _served(checkout, "tinybase:1.0.0")
    for version, refused in (("1.0.0", True), ("1.1.0", False)):
        found = resolve(f"bot:{version}")
        if refused:
            with pytest.raises(
                AdapterError, match="registry recorded its base model's fingerprint"
            ):
                check_adapter(found.path, served, found.record.lineage)
        else:
            assert found.record.lineage["base_model_fingerprint"]
            assert check_adapter(found.path, served, found.record.lineage) == 4


def test_a_server_refuses_a_canary_trained_on_another_base(models, bases, registry, tmp_path):
    """The trial: an adapter on a same-shape model with other weights, loaded as a rollout's
    candidate onto a server of the base: refused at load, with the reason, by a real server."""
    adapter = _lora(bases.twin, bases.root / "candidate")
    _run("register", "--model", str(models.one), "--name", "bot", "--version", "1.0.0")
    _run("register", "--model", str(adapter), "--name", "bot", "--version", "1.1.0")
    _run("promote", "bot:1.0.0", "--env", "production")
    args = (str(models.base), "--adapter", "bot=bot@production", "--follow-interval", "0.3")
    with serving(*args, cwd=tmp_path, env=registry) as server:
        for path in (str(adapter), "bot:1.1.0"):
            body = json.dumps({"lora_name": "x", "lora_path": path}).encode()
            request = urllib.request.Request(
                server.url + "/v1/load_lora_adapter", body, {"Content-Type": "application/json"}
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            message = json.loads(refused.value.read())["error"]["message"]
            assert refused.value.code == 400 and "other weights" in message, message
        _run("rollout", "start", "bot:1.1.0", "--env", "production", "--canary", "50%")
        _wait_for(lambda: _latest_status() == "rolled-back")
        said = f"rollout {_latest().id} rolled-back: bot serves 1.0.0 (the candidate 1.1.0"
        _wait_for(lambda: said in server.log.read_text())
    assert "other weights" in _latest_reason()


def _wait_for(condition, seconds: float = 30) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server did not act in time"
        time.sleep(0.2)


def _latest():
    from lfm.registry import open_registry, rollouts

    store = open_registry()
    try:
        return rollouts.latest(store, "bot", "production")
    finally:
        store.close()


def _latest_status() -> str:
    return _latest().status


def _latest_reason() -> str:
    return _latest().reason
