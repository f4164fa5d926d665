"""Build a tiny Llama model and tokenizer from local text, with nothing downloaded.

A bundle can then be compiled and trained end to end on a laptop or in CI in
seconds. After random initialisation the model is briefly trained on the
tokenizer's corpus (about a second on a CPU): a purely random model with a
frozen output head can barely move its loss under LoRA, while a warmed-up one
responds to fine-tuning the way a real base model does, so a quickstart run
shows a falling loss. Usage without the CLI::

    python -m lfm.runtime.tiny DIR [--chat-template] [--seed N] [--force]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import RuntimeConfigError
from .quiet import quiet_third_party

quiet_third_party()

BOS, EOS, UNK, PAD = "<s>", "</s>", "<unk>", "<pad>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# Chat markers are always in the vocabulary so both variants share token ids.
SPECIAL_TOKENS = [UNK, BOS, EOS, PAD, IM_START, IM_END]
MAX_POSITIONS = 1024
_PRETRAIN_BLOCK, _PRETRAIN_BATCH = 64, 16

# ChatML layout; the end-of-turn marker doubles as eos so generation stops there.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    corpus: list[str] | None = None,
    vocab_size: int = 512,
    seed: int = 0,
    chat_template: bool = False,
    overwrite: bool = False,
    pretrain_steps: int = 100,
) -> Path:
    """Train a byte-level BPE tokenizer, build a tiny Llama, save both to ``out_dir``.

    ``pretrain_steps`` language-modelling steps on ``corpus`` follow the random
    initialisation (0 keeps the random weights). On a given machine the output is
    byte-for-byte deterministic for the same arguments. Returns the output directory.
    """
    out = Path(out_dir).expanduser()
    _check_output_dir(out, overwrite)
    if corpus is None:
        from .tiny_corpus import lines

        corpus = lines()
    tokenizer = _build_tokenizer(corpus, vocab_size, chat_template)
    model = _build_model(tokenizer, seed)
    _pretrain(model, tokenizer, corpus, pretrain_steps, seed)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def _check_output_dir(out: Path, overwrite: bool) -> None:
    """Never mix a tiny model into a directory that already holds something."""
    if out.exists() and not out.is_dir():
        raise RuntimeConfigError(f"tiny model: {out} exists and is not a directory; pick another")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RuntimeConfigError(
            f"tiny model: {out} is not empty; choose an empty directory or pass --force to "
            "write into it"
        )


def _build_tokenizer(corpus: Sequence[str], vocab_size: int, chat_template: bool) -> Any:
    """Train byte-level BPE on ``corpus`` and wrap it as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        # 256 byte symbols + special tokens must fit, with room for some merges.
        raise RuntimeConfigError(f"tiny model: vocab_size {vocab_size} is too small; use >= 300")
    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(corpus), trainer=trainer)
    # Prepend bos like Llama tokenizers do, so data code sees a realistic special token.
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, core.token_to_id(BOS))],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=IM_END if chat_template else EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=MAX_POSITIONS,
    )
    if chat_template:
        tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _build_model(tokenizer: Any, seed: int) -> Any:
    """A ~0.1M-parameter Llama whose vocabulary matches ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def _pretrain(model: Any, tokenizer: Any, corpus: Sequence[str], steps: int, seed: int) -> None:
    """A short, seeded language-modelling warm-up on the corpus (CPU, fixed batches)."""
    import torch

    if steps <= 0:
        return
    ids = [tok for line in corpus for tok in tokenizer(line + tokenizer.eos_token)["input_ids"]]
    block = min(_PRETRAIN_BLOCK, len(ids))
    blocks = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    # Ops this small gain little from threads, and on a busy machine spinning OpenMP
    # threads slow them down ~10x; one thread also keeps the bytes thread-count independent.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(steps):
            batch = blocks[torch.randint(len(blocks), (_PRETRAIN_BATCH,), generator=generator)]
            model(input_ids=batch, labels=batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
    finally:
        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lfm.runtime.tiny DIR``: build a tiny model without the lfm CLI."""
    parser = argparse.ArgumentParser(prog="python -m lfm.runtime.tiny", description=__doc__)
    parser.add_argument("out_dir", help="directory to create (must be empty or absent)")
    parser.add_argument("--chat-template", action="store_true", help="add a ChatML chat template")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.add_argument("--vocab-size", type=int, default=512, help="BPE vocabulary size")
    # --force, as `lfm dev tiny-model` spells it; --overwrite is its older name.
    parser.add_argument(
        "--force", "--overwrite", dest="overwrite", action="store_true",
        help="write into a non-empty dir",
    )  # fmt: skip
    parser.add_argument(
        "--pretrain-steps", type=int, default=100, help="warm-up steps on the corpus (0: random)"
    )
    args = parser.parse_args(argv)
    try:
        out = build_tiny_model(
            args.out_dir,
            vocab_size=args.vocab_size,
            seed=args.seed,
            chat_template=args.chat_template,
            overwrite=args.overwrite,
            pretrain_steps=args.pretrain_steps,
        )
    except RuntimeConfigError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"tiny model written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
