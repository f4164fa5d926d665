"""Load a model to evaluate, and measure it: perplexity, and generation with timing.

A model is a base model (hub id or directory), a full fine-tune's output directory, or an
adapter directory (it holds `adapter_config.json`): the adapter is attached to the base model it
names with PEFT, exactly as it was trained.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import data, modeling, paths
from ..errors import RuntimeConfigError
from .evalset import EvalExample

PathLike = str | os.PathLike[str]
ADAPTER_CONFIG = "adapter_config.json"
_MODEL_MARKERS = ("config.json", ADAPTER_CONFIG)  # a directory holding either is one model


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated; greedy decoding by default, so runs are repeatable."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 8

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    path: str  # as given: a hub id or a directory
    base_model: str  # the base it was trained from (itself for a base model)
    kind: str  # "base", "adapter" or "full"


@dataclass
class Generations:
    texts: list[str]
    latencies: list[float] = field(default_factory=list)  # seconds per answer
    new_tokens: int = 0
    seconds: float = 0.0


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_for_eval(
    path: str,
    *,
    base_model: str | None = None,
    base_dir: PathLike | None = None,
    quantization_config: Any = None,
) -> LoadedModel:
    """Load a base model, a full fine-tune, or base + adapter, on the GPU when there is one.

    With a `quantization_config` (QLoRA's 4-bit BitsAndBytesConfig, as train.py used it) the
    base weights are quantized as they load, through the loader training uses: the adapter is
    scored on the base it was trained on, and a missing or unusable bitsandbytes is training's
    one-line error.
    """
    local = Path(paths.resolve(path, base_dir)) if paths.is_local(path) else None
    if local is not None and not local.exists():
        raise RuntimeConfigError(
            f"evaluate: {local} does not exist; train first (python train.py) or point --model "
            f"at a trained model"
        )
    if (
        local is not None
        and local.is_dir()
        and not any((local / m).exists() for m in _MODEL_MARKERS)
    ):
        raise RuntimeConfigError(_not_a_model(local))
    load: dict[str, Any] = (
        # bitsandbytes places the 4-bit weights itself; the other weights load as in training.
        {"quantization_config": quantization_config}
        if quantization_config is not None
        else {"dtype": "auto" if device() == "cuda" else "float32"}
    )
    if local is not None and (local / ADAPTER_CONFIG).exists():
        base = base_model or _adapter_base(local)
        model = modeling.load_model(base, base_dir=base_dir, **load)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(local))
        kind = "adapter"
    else:
        model = modeling.load_model(path, base_dir=base_dir, **load)
        base, kind = (base_model or path), ("full" if base_model else "base")
    tokenizer = load_eval_tokenizer(path, base_model=base, base_dir=base_dir)
    if quantization_config is None:
        model.to(device())
    model.eval()
    return LoadedModel(model, tokenizer, path, base, kind)


def load_eval_tokenizer(
    path: str, *, base_model: str | None = None, base_dir: PathLike | None = None
) -> Any:
    """The tokenizer saved with the model (training saves it), else the base model's."""
    local = Path(paths.resolve(path, base_dir)) if paths.is_local(path) else None
    if local is not None and _has_tokenizer(local):
        return modeling.load_tokenizer(str(local))
    if local is not None and (local / ADAPTER_CONFIG).exists():
        base_model = base_model or _adapter_base(local)
    return modeling.load_tokenizer(base_model or path, base_dir=base_dir)


def adapter_folders(path: str) -> dict[str, str]:
    """A hybrid run's output directory: adapter name -> folder, for each adapter it holds (in
    name order); {} for anything else (a model, one adapter, a hub id)."""
    directory = Path(path)
    if not directory.is_dir() or any((directory / m).exists() for m in _MODEL_MARKERS):
        return {}
    return {p.name: str(p) for p in sorted(directory.iterdir()) if (p / ADAPTER_CONFIG).exists()}


def _adapter_base(adapter_dir: Path) -> str:
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise RuntimeConfigError(
            f"evaluate: {adapter_dir / ADAPTER_CONFIG} does not name its base model; pass it "
            f"with --base"
        )
    return str(base)


def _has_tokenizer(directory: Path) -> bool:
    return (directory / "tokenizer_config.json").exists()


def _not_a_model(directory: Path) -> str:
    adapters = sorted(p.name for p in directory.iterdir() if (p / ADAPTER_CONFIG).exists())
    if adapters:
        return (
            f"evaluate: {directory} holds several adapters ({', '.join(adapters)}); point "
            f"--model at one of them"
        )
    return (
        f"evaluate: {directory} holds no model (no config.json) and no adapter "
        f"({ADAPTER_CONFIG}); point --model at a training run's output directory"
    )


def perplexity(loaded: LoadedModel, examples: tuple[EvalExample, ...], batch_size: int) -> float:
    """exp(mean negative log-likelihood per response token), weighted by tokens over all examples.

    The labels are training's: only response tokens count unless `train_on_inputs`.
    """
    import torch

    collate = data.collator(loaded.tokenizer)
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = collate(
            [
                {
                    "input_ids": list(e.input_ids),
                    "attention_mask": [1] * len(e.input_ids),
                    "labels": list(e.labels),
                }
                for e in chunk
            ]
        )
        batch = {k: v.to(loaded.model.device) for k, v in batch.items()}
        # The model's loss is the mean over the tokens it predicts (labels shifted by one).
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        with torch.no_grad():
            loss = loaded.model(**batch).loss
        total_nll += float(loss) * tokens
        total_tokens += tokens
    if total_tokens == 0:
        raise RuntimeConfigError("evaluation: perplexity needs response tokens; none were found")
    return math.exp(total_nll / total_tokens)


def generate(
    loaded: LoadedModel, examples: tuple[EvalExample, ...], settings: GenerationSettings
) -> Generations:
    """Generate an answer per prompt, in batches, timing each answer.

    An answer's latency runs from the start of its batch to the step that completed it (its
    end-of-sequence token, else the batch's last step): what a request served in that batch
    waits for its whole answer. With `batch_size: 1` it is single-request latency.
    """
    import torch

    tokenizer = loaded.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the last real token
    result = Generations(texts=[])
    try:
        for start in range(0, len(examples), settings.batch_size):
            chunk = examples[start : start + settings.batch_size]
            batch = tokenizer(
                [e.prompt for e in chunk],
                return_tensors="pt",
                padding=True,
                add_special_tokens=chunk[0].add_special_tokens,  # as the text was tokenized
            )
            batch = {k: v.to(loaded.model.device) for k, v in batch.items()}
            _sync()
            finish_times = _FinishTimes(tokenizer.eos_token_id, len(chunk))
            began = time.perf_counter()
            with torch.no_grad():
                output = loaded.model.generate(
                    **batch,
                    **settings.generate_kwargs(),
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    stopping_criteria=_stopping_criteria(finish_times),
                )
            _sync()
            ended = time.perf_counter()
            new = output[:, batch["input_ids"].shape[1] :]
            result.texts += [
                t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)
            ]
            result.new_tokens += int((new != tokenizer.pad_token_id).sum())
            result.latencies += [(ended if t is None else t) - began for t in finish_times.at]
            result.seconds += ended - began
    finally:
        tokenizer.padding_side = side
    return result


class _FinishTimes:
    """When each row of a batch produced its end-of-sequence token (None: not yet).

    Called by `generate` after every step, as a stopping criterion that never stops anything:
    generation already ends each row at its EOS, and the batch when all have ended.
    """

    def __init__(self, eos_token_id: int | list[int] | None, rows: int) -> None:
        ids = eos_token_id if isinstance(eos_token_id, list) else [eos_token_id]
        self.eos = {i for i in ids if i is not None}
        self.at: list[float | None] = [None] * rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        now = time.perf_counter()
        for row, token in enumerate(input_ids[:, -1].tolist()):  # the token this step added
            if self.at[row] is None and token in self.eos:
                self.at[row] = now
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _stopping_criteria(finish_times: _FinishTimes) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Record(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return finish_times(input_ids, scores, **kwargs)

    return StoppingCriteriaList([_Record()])


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
