"""A local causal language model (a path or hub id) as a ``complete(prompt)`` client.

Prompts are answered in batches (left-padded, greedy), so a document's chunks go through the
model together rather than one ``generate`` call each; replies are cached on disk by the model's
identity and the prompt, so a rerun (or a run stopped half-way) does not generate twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from .cache import ReplyCache

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


class TransformersClient:
    name = "transformers"

    def __init__(
        self,
        model: str,
        max_new_tokens: int = 512,
        *,
        batch_size: int = 8,
        cache: ReplyCache | None = None,
    ) -> None:
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise DatasetError(
                "the transformers generator needs the training extra: pip install 'lfm[train]'"
            ) from None
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(model)
            self.model: Any = AutoModelForCausalLM.from_pretrained(model)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"could not load generator model {model!r}: {exc}") from None
        self.model.eval()
        self.tokenizer.padding_side = "left"  # generation continues each row from its end
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = max_new_tokens
        self.batch_size = max(1, batch_size)
        self.cache = cache or ReplyCache(None)
        self.identity = model_identity(model)
        self._lock = threading.Lock()  # one generate() at a time: the model is not thread-safe
        self.stats = {"generations": 0, "batches": 0, "cache_hits": 0}

    def __call__(self, prompt: str, max_new_tokens: int | None = None) -> str:
        return self.complete_many([prompt], max_new_tokens)[0]

    def complete_many(self, prompts: list[str], max_new_tokens: int | None = None) -> list[str]:
        """A reply to each prompt, in order: cached ones from disk, the rest in batches."""
        limit = max_new_tokens or self.max_new_tokens
        keys = [self._key(p, limit) for p in prompts]
        replies: list[str | None] = [self.cache.get(k) for k in keys]
        self.stats["cache_hits"] += sum(r is not None for r in replies)
        todo = [i for i, r in enumerate(replies) if r is None]
        # Similar lengths share a batch: less padding to compute over.
        todo.sort(key=lambda i: len(prompts[i]))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            made = self._generate([prompts[i] for i in batch], limit)
            for index, reply in zip(batch, made, strict=True):
                replies[index] = reply
                self.cache.put(keys[index], reply)
        return [r or "" for r in replies]

    def _generate(self, prompts: list[str], limit: int) -> list[str]:
        import torch

        # One lock around all of it: a fast tokenizer shared by threads can fail ("Already
        # borrowed") when two pad at once, and the model is not thread-safe either.
        with self._lock, torch.no_grad():
            texts = [self._chat(p) for p in prompts]
            inputs = self.tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=False
            )
            output = self.model.generate(
                **inputs,
                max_new_tokens=limit,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            self.stats["generations"] += len(prompts)
            self.stats["batches"] += 1
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [str(t) for t in decoded]

    def _chat(self, prompt: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
            )
        return prompt

    def _key(self, prompt: str, limit: int) -> str:
        return ReplyCache.key(
            {"backend": self.name, "model": self.identity, "prompt": prompt, "max": limit}
        )


def model_identity(model: str) -> str:
    """What a cached reply was made by: a local folder's config and weight files (name, size,
    modification time), so retrained weights are not answered from the cache; else the hub id."""
    folder = Path(model)
    if not folder.is_dir():
        return model
    parts: list[Any] = []
    config = folder / "config.json"
    if config.is_file():
        parts.append(hashlib.sha256(config.read_bytes()).hexdigest())
    for path in sorted(folder.iterdir()):
        if path.suffix in WEIGHT_SUFFIXES and path.is_file():
            stat = path.stat()
            parts.append([path.name, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
