"""A local causal language model (a path or hub id) as a ``complete(prompt)`` client."""

from __future__ import annotations

import threading
from typing import Any

from ..errors import DatasetError


class TransformersClient:
    name = "transformers"

    def __init__(self, model: str, max_new_tokens: int = 512) -> None:
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
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()  # one generate() at a time: the model is not thread-safe
        self.stats = {"generations": 0}

    def __call__(self, prompt: str) -> str:
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt
        inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with self._lock, torch.no_grad():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
            self.stats["generations"] += 1
        new_tokens = output[0][inputs["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
