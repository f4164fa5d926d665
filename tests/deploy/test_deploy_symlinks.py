"""`lfm deploy` copies into the image's build context nothing a link points to outside the
model or base folder (issue 17)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_links import LINKS, SECRET, holds_secret, plant_links
from lfm.cli import lfm


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A LoRA adapter saved by peft on a tiny local model (its base, beside it)."""
    pytest.importorskip("peft")
    from lfm.runtime.tiny import build_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("deploy-links")
    base = build_tiny_model(root / "tiny-model", pretrain_steps=0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=8, target_modules=["q_proj"])
    )
    model.save_pretrained(root / "output")
    return root


def deploy(*args: str):
    return CliRunner().invoke(lfm, ["deploy", "--version", "1.0.0", *args])


def test_links_out_of_the_model_and_base_never_reach_the_build_context(trained, tmp_path):
    model, base = tmp_path / "output", tmp_path / "base"
    shutil.copytree(trained / "output", model)
    shutil.copytree(trained / "tiny-model", base)
    plant_links(model, tmp_path / "outside")
    plant_links(base, tmp_path / "outside-base")
    (model / "README-link.md").symlink_to("README.md")  # inside the folder, to a file there
    out = tmp_path / "out"

    done = deploy("--model", str(model), "--base", str(base), "-o", str(out))
    assert done.exit_code == 0, done.output
    assert holds_secret(out) == []  # no link, no file holding what the links point to
    assert (out / "model/adapter_config.json").is_file() and (out / "base/config.json").is_file()
    assert not any((out / "model" / name).exists() for name in LINKS)
    copied = out / "model/README-link.md"
    assert copied.read_text() == (model / "README.md").read_text()
    assert SECRET not in (out / "MANIFEST.sha256").read_text()
    for folder in (model, base):
        for name in LINKS:
            assert f"warning: skipped {folder / name}: symbolic link to" in done.stderr
    assert f"symbolic link to {tmp_path / 'outside' / 'private'} (outside {model})" in done.stderr
    assert "Traceback" not in done.output


def test_a_model_folder_of_nothing_but_links_is_an_error(trained, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained / "output", tmp_path / "real")
    model.mkdir()
    for file in (tmp_path / "real").iterdir():
        (model / file.name).symlink_to(file)  # every file lives outside the folder named
    out = tmp_path / "out"
    done = deploy("--model", str(model), "--base", str(trained / "tiny-model"), "-o", str(out))
    assert done.exit_code == 1 and not out.exists()
    assert f"{model} holds no file to copy" in done.output and "Traceback" not in done.output
