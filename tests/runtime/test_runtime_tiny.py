"""The tiny local model: deterministic, small, and careful with existing directories."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lfm.runtime.errors import RuntimeConfigError
from lfm.runtime.tiny import build_tiny_model, main

CORPUS = ["A short line of text for a quick tokenizer.", "Another line, with numbers 1 2 3."] * 5


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes(tmp_path: Path, tiny_model_dir: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json"):
        assert digest(again / name) == digest(tiny_model_dir / name)
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert digest(other / "model.safetensors") != digest(again / "model.safetensors")


def test_warm_up_training_lowers_corpus_loss(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def corpus_loss(path: Path) -> float:
        tokenizer = AutoTokenizer.from_pretrained(path)
        ids = tokenizer(" ".join(CORPUS), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            return AutoModelForCausalLM.from_pretrained(path)(input_ids=ids, labels=ids).loss.item()

    random = build_tiny_model(tmp_path / "random", corpus=CORPUS, pretrain_steps=0)
    warm = build_tiny_model(tmp_path / "warm", corpus=CORPUS, pretrain_steps=20)
    assert corpus_loss(warm) < corpus_loss(random) - 1


def test_output_is_small_and_loadable(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (tiny_model_dir / "model.safetensors").stat().st_size < 5_000_000
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.chat_template is None
    assert tokenizer.decode(tokenizer("Hello there.")["input_ids"], skip_special_tokens=True) == (
        "Hello there."
    )


def test_chat_variant(tiny_chat_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>"
    assert len(tokenizer("<|im_start|>", add_special_tokens=False)["input_ids"]) == 1


def test_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RuntimeConfigError, match="is not empty"):
        build_tiny_model(tmp_path, corpus=CORPUS)
    build_tiny_model(tmp_path, corpus=CORPUS, overwrite=True, pretrain_steps=0)
    assert (tmp_path / "keep.txt").exists() and (tmp_path / "config.json").exists()


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main([str(tmp_path / "m"), "--chat-template", "--seed", "3", "--pretrain-steps", "1"]) == 0
    )
    assert (tmp_path / "m" / "chat_template.jinja").exists() or "chat_template" in (
        tmp_path / "m" / "tokenizer_config.json"
    ).read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "m")])
    assert exit_info.value.code == 2
    assert "is not empty; choose an empty directory or pass --force" in capsys.readouterr().err
    assert main([str(tmp_path / "m"), "--force", "--pretrain-steps", "0"]) == 0


def test_lfm_dev_tiny_model_names_its_own_flag(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from lfm.cli import lfm

    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    done = CliRunner().invoke(lfm, ["dev", "tiny-model", str(tmp_path)])
    assert done.exit_code == 1 and "pass --force" in done.output, done.output
    assert "--overwrite" not in done.output
