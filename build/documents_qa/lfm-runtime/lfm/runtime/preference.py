"""Preference tuning for ``train.py``: the pairs, TRL's trainers with lfm's checkpoints, and the
held-out preference accuracy before and after training.

Records (``dataset.preprocessing.format``):

- ``preference``: ``{"prompt", "chosen", "rejected"}``, each a string, or TRL's conversational
  form: ``prompt`` a list of ``{"role", "content"}`` messages and ``chosen``/``rejected`` the
  assistant's message(s).
- ``unpaired_preference`` (KTO): ``{"prompt", "completion", "label"}``, ``label`` true for a
  good completion and false for a bad one; strings or messages as above.

``auto`` tells them apart by their keys. KTO also takes pairs (each gives one good and one bad
completion); DPO, ORPO and SimPO need pairs. The held-out split is made over the records as
written (pairs stay whole), before KTO's unpairing, so the same pairs are scored before and
after training whatever the objective.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datasets import Dataset

from . import checkpoints
from .errors import RuntimeConfigError
from .formats import _alpaca_keys, _keys, _present, record_name  # as SFT data reads them
from .launch import announce, is_main_process
from .sources import load_records

PAIRED, UNPAIRED = "preference", "unpaired_preference"
FORMATS = ("auto", PAIRED, UNPAIRED)
EVAL_FILE = "preference_eval.json"
# TRL's trainers by the names train.py calls them, and where TRL keeps them (ORPO and CPO,
# whose SimPO loss lfm uses, live in trl.experimental since TRL 1.0).
TRAINERS = {
    "DPOTrainer": "trl",
    "KTOTrainer": "trl",
    "ORPOTrainer": "trl.experimental.orpo",
    "CPOTrainer": "trl.experimental.cpo",
}
_EXPECTED = {
    PAIRED: "'prompt', 'chosen' and 'rejected'",
    UNPAIRED: "'prompt', 'completion' and 'label' (true or false)",
}
# What a record of another shape is, and what to set for it (see _looks_like).
_OTHER_SHAPES = {
    PAIRED: f"a pair ({_EXPECTED[PAIRED]}): set dataset.preprocessing.format: {PAIRED}",
    UNPAIRED: f"KTO's unpaired form ({_EXPECTED[UNPAIRED]}): set dataset.preprocessing.format: "
    f"{UNPAIRED} and fine_tuning.objective: kto",
    "sft": "supervised data ({}), not preference data: set dataset.preprocessing.format: {} and "
    "fine_tuning.objective: sft, or give prompt/chosen/rejected pairs",
}

PathLike = str | os.PathLike[str]
# The adapter TRL adds to a PEFT model as the reference: a copy of the adapter as it starts.
REFERENCE_ADAPTER = "ref"


class _AdapterDisabledReference:
    """The reference is the base with the adapter disabled. TRL 1.x copies a PEFT model's
    adapter into a second one, "ref", in case it was pretrained; lfm's adapter is new (zero
    at the start: the same as no adapter), so the copy would only cost memory, double every
    checkpoint and leave a ``ref/`` adapter beside the trained one. Without it TRL computes
    the reference with the adapter disabled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model: Any = getattr(self, "model", None)
        adapters = getattr(model, "peft_config", None)
        if isinstance(adapters, dict) and REFERENCE_ADAPTER in adapters:
            model.delete_adapter(REFERENCE_ADAPTER)


def __getattr__(name: str) -> Any:
    """``preference.DPOTrainer`` and the others: TRL's trainer with lfm's checkpoints (written
    aside and renamed into place), built on first use so that importing this module does not
    import TRL's experimental trainers."""
    if name not in TRAINERS:
        raise AttributeError(name)
    import importlib

    trl_class = getattr(importlib.import_module(TRAINERS[name]), name)
    doc = f"TRL's {name}, with lfm's checkpoint handling (atomic checkpoints, metrics first)."
    bases = (_AdapterDisabledReference, checkpoints.Trainer, trl_class)
    trainer = type(name, bases, {"__doc__": doc})
    globals()[name] = trainer
    return trainer


# ---- records ----------------------------------------------------------------------------------


def load_pairs(
    spec: Any, *, paired: bool, base_dir: PathLike | None = None
) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """``(train, eval, held_out_pairs)``: what the trainer trains and evaluates on (unpaired
    for KTO), and the held-out pairs scored before and after training (None without a split,
    or when the records are unpaired)."""
    fmt, train, held_out = _checked_split(spec, base_dir)
    if paired and fmt == UNPAIRED:
        raise RuntimeConfigError(
            "dataset: this objective learns from pairs (prompt, chosen, rejected), and the "
            "records are unpaired (prompt, completion, label); use objective kto, or pair them"
        )
    if paired or fmt == UNPAIRED:
        return train, held_out, held_out if fmt == PAIRED else None
    return unpair(train), unpair(held_out) if held_out is not None else None, held_out


def held_out_pairs(spec: Any, *, base_dir: PathLike | None = None) -> Dataset:
    """The pairs train.py held out (same records, same seeded split): what evaluate.py scores."""
    fmt, _, pairs = _checked_split(spec, base_dir)
    if pairs is None or fmt != PAIRED:
        raise RuntimeConfigError(
            "evaluation: there are no held-out pairs to score ("
            + (
                "dataset.validation.split_ratio is 0"
                if spec.holdout_ratio == 0
                else "the records are unpaired: prompt, completion, label"
            )
            + "); give evaluation.test_set or benchmarks instead"
        )
    return pairs


def _checked_split(spec: Any, base_dir: PathLike | None) -> tuple[str, Dataset, Dataset | None]:
    """``(format, train, held_out)``: every record checked, then split as written."""
    records = load_records(spec, base_dir)
    if len(records) == 0:
        raise RuntimeConfigError("dataset: no records")
    fmt = detect_format(records[0]) if spec.format == "auto" else spec.format
    if fmt not in (PAIRED, UNPAIRED):
        raise RuntimeConfigError(
            f"dataset.preprocessing.format {fmt!r} is not preference data; use {PAIRED} or "
            f"{UNPAIRED}"
        )
    rows = [check_record(record, fmt, index) for index, record in enumerate(records)]
    train, held_out = _split(Dataset.from_list(rows), spec.holdout_ratio, spec.seed)
    return fmt, train, held_out


def detect_format(record: Mapping[str, Any]) -> str:
    if _present(record, "chosen") and _present(record, "rejected"):
        return PAIRED
    if _present(record, "completion") and _present(record, "label"):
        return UNPAIRED
    raise RuntimeConfigError(
        f"dataset.preprocessing.format 'auto': {record_name(0)} is not preference data. It has "
        f"{_keys(record)}; a pair has {_EXPECTED[PAIRED]}, and an unpaired completion "
        f"{_EXPECTED[UNPAIRED]}." + _shape_hint(record, None)
    )


def check_record(record: Mapping[str, Any], fmt: str, index: int) -> dict[str, Any]:
    """The record's fields as TRL reads them, or an error naming the record and the problem."""
    prompt = _part(record, "prompt", index, fmt, prompt=True)
    if fmt == PAIRED:
        chosen = _part(record, "chosen", index, fmt)
        rejected = _part(record, "rejected", index, fmt)
        if isinstance(prompt, list) != isinstance(chosen, list) or isinstance(
            chosen, list
        ) != isinstance(rejected, list):
            raise _bad(
                record, index, fmt, "prompt, chosen and rejected must all be text or all messages"
            )
        if chosen == rejected:
            raise _bad(record, index, fmt, "chosen and rejected are the same: nothing to prefer")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    completion = _part(record, "completion", index, fmt)
    label = record.get("label")
    if not isinstance(label, bool):
        raise _bad(record, index, fmt, "'label' must be true (a good completion) or false")
    if isinstance(prompt, list) != isinstance(completion, list):
        raise _bad(record, index, fmt, "prompt and completion must both be text or both messages")
    return {"prompt": prompt, "completion": completion, "label": label}


def unpair(pairs: Dataset) -> Dataset:
    """Each pair as KTO's two records: its chosen completion good, its rejected one bad."""
    rows = []
    for pair in pairs:
        rows.append({"prompt": pair["prompt"], "completion": pair["chosen"], "label": True})
        rows.append({"prompt": pair["prompt"], "completion": pair["rejected"], "label": False})
    return Dataset.from_list(rows)


def _part(record: Mapping[str, Any], key: str, index: int, fmt: str, prompt: bool = False) -> Any:
    value = record.get(key)
    if isinstance(value, str):
        if not value.strip() and not prompt:
            raise _bad(record, index, fmt, f"{key!r} is empty")
        return value
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    if value is None:
        raise _bad(record, index, fmt, f"{key!r} is missing", keys=True)
    raise _bad(
        record, index, fmt, f"{key!r} must be a string or a list of {{'role', 'content'}} messages"
    )


def _is_message(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("role"), str)
        and isinstance(value.get("content"), str)
    )


def _bad(
    record: Mapping[str, Any], index: int, fmt: str, detail: str, keys: bool = False
) -> RuntimeConfigError:
    """A record's problem; a missing key also says what the record has, and what it looks like
    when that is another format."""
    message = f"{record_name(index)} is not valid {fmt} data: {detail}"
    if keys:
        has = f"It has {_keys(record)}; {fmt} records have {_EXPECTED[fmt]}."
        message += f". {has}{_shape_hint(record, fmt)}"
    return RuntimeConfigError(message)


def _looks_like(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(format, its keys) of the shape ``record`` has, or None when it has none lfm knows."""
    if _present(record, "chosen") and _present(record, "rejected"):
        return PAIRED, ""
    if _present(record, "completion") and _present(record, "label"):
        return UNPAIRED, ""
    alpaca = _alpaca_keys(record)
    if alpaca is not None:
        return "alpaca", " and ".join(alpaca)
    for key, fmt in (
        ("messages", "messages"),
        ("conversations", "sharegpt"),
        ("text", "completion"),
    ):
        if _present(record, key):
            return fmt, key
    return None


def _shape_hint(record: Mapping[str, Any], fmt: str | None) -> str:
    found = _looks_like(record)
    if found is None or found[0] == fmt:
        return ""
    shape, keys = found
    if shape in (PAIRED, UNPAIRED):
        return f" This record looks like {_OTHER_SHAPES[shape]}."
    return f" This record looks like {_OTHER_SHAPES['sft'].format(keys, shape)}."


def _split(examples: Dataset, ratio: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Deterministic split keeping at least one record on each side (as SFT data's)."""
    if ratio == 0:
        return examples, None
    total = len(examples)
    if total < 2:
        raise RuntimeConfigError(
            f"dataset.validation.split_ratio is {ratio} but there is only {total} record; add "
            "data or set split_ratio to 0"
        )
    n_eval = min(max(1, math.ceil(total * ratio)), total - 1)
    parts = examples.train_test_split(test_size=n_eval, seed=seed)
    return parts["train"], parts["test"]


# ---- held-out preference accuracy -------------------------------------------------------------


def score_pairs(
    trainer: Any,
    tokenizer: Any,
    pairs: Dataset | None,
    output_dir: PathLike,
    *,
    stage: str,
    max_length: int,
) -> dict[str, Any] | None:
    """Score the held-out pairs with the trainer's model, on its device, and record them under
    ``stage`` ("before" or "after" training) in preference_eval.json.

    Preference accuracy: the share of pairs whose chosen completion the model finds more
    likely than the rejected one, per token (so length does not decide), and the mean margin
    of those per-token log-probabilities; each sequence cut at ``max_length`` as TRL cuts it.
    The main process scores; a model sharded across processes (ZeRO-3, FSDP) is not scored
    here (TRL's held-out rewards in evals.jsonl still are). "before" is scored once for these
    pairs: a restarted run's start is the same model, its checkpoint loaded only later."""
    if pairs is None or len(pairs) == 0 or not is_main_process():
        return None
    if _sharded(trainer):
        if stage == "before":
            announce(
                "held-out pairs not scored by train.py: the model is sharded across processes "
                "(ZeRO-3 or FSDP); TRL's held-out rewards are in evals.jsonl"
            )
        return None
    path = Path(output_dir) / EVAL_FILE
    found = _read(path)
    fingerprint = _fingerprint(pairs)
    if stage == "before" and found.get("pairs_sha256") == fingerprint and "before" in found:
        return dict(found["before"])
    scores = pair_scores(trainer.model, tokenizer, pairs, max_length)
    if stage == "before" or found.get("pairs_sha256") != fingerprint:
        found = {"pairs_sha256": fingerprint}
    found[stage] = scores
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
    announce(
        f"held-out preference accuracy {stage} training: "
        f"{scores['preference_accuracy']:.3f} over {scores['pairs']} pairs "
        f"(mean per-token log-prob margin {scores['mean_logp_margin']:+.4f})"
    )
    return scores


def pair_scores(model: Any, tokenizer: Any, pairs: Dataset, max_length: int) -> dict[str, Any]:
    """``{"pairs", "preference_accuracy", "mean_logp_margin"}`` of ``model`` on ``pairs``: what
    train.py records before and after training, and evaluate.py reports for each model."""
    margins = _margins(model, tokenizer, pairs, max_length)
    return {
        "pairs": len(margins),
        "preference_accuracy": sum(m > 0 for m in margins) / len(margins),
        "mean_logp_margin": sum(margins) / len(margins),
    }


def _sharded(trainer: Any) -> bool:
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return False
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    return bool(is_deepspeed_zero3_enabled())


def _fingerprint(pairs: Dataset) -> str:
    import hashlib

    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(json.dumps(pair, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


# Tokens scored in one forward pass: the logits of a batch take tokens x vocabulary floats (a
# 2k-token pair on a 150k vocabulary is over a GB), so long sequences go a few at a time.
EVAL_TOKENS = 8192


def _margins(model: Any, tokenizer: Any, pairs: Dataset, max_length: int) -> list[float]:
    """Per pair, the chosen completion's mean log-probability per token minus the rejected
    one's."""
    import torch

    sequences = []
    for pair in pairs:
        for side in ("chosen", "rejected"):
            prompt, completion = completion_tokens(tokenizer, pair["prompt"], pair[side])
            sequences.append((prompt, completion[: max(1, max_length - len(prompt))]))
    means: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in _batches(sequences):
                means += _mean_logps(model, batch)
    finally:
        model.train(was_training)
    return [chosen - rejected for chosen, rejected in zip(means[::2], means[1::2], strict=True)]


def _batches(sequences: list[tuple[list[int], list[int]]]) -> Any:
    batch: list[tuple[list[int], list[int]]] = []
    for sequence in sequences:
        width = max([len(p) + len(c) for p, c in batch + [sequence]])
        if batch and (len(batch) + 1) * width > EVAL_TOKENS:
            yield batch
            batch = []
        batch.append(sequence)
    if batch:
        yield batch


def _mean_logps(model: Any, batch: list[tuple[list[int], list[int]]]) -> list[float]:
    """Mean log-probability per token of each completion after its prompt (right-padded); the
    log-softmax is taken at the completion's positions only."""
    import torch

    width = max(len(prompt) + len(completion) for prompt, completion in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (prompt, completion) in enumerate(batch):
        whole = prompt + completion
        ids[row, : len(whole)] = torch.tensor(whole)
        mask[row, : len(whole)] = 1
    device = next(model.parameters()).device
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    means = []
    for row, (prompt, completion) in enumerate(batch):
        start, end = len(prompt), len(prompt) + len(completion)
        if start == end:  # nothing left of the completion to score
            means.append(0.0)
            continue
        # position t predicts token t + 1
        logps = torch.log_softmax(logits[row, start - 1 : end - 1].float(), dim=-1)
        targets = ids[row, start:end].to(logps.device)
        means.append(float(logps.gather(1, targets.unsqueeze(1)).mean()))
    return means


def completion_tokens(tokenizer: Any, prompt: Any, completion: Any) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids): the completion starts where the tokenized prompt and the
    tokenized prompt + completion part (as TRL splits them)."""
    if isinstance(prompt, list):
        head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        whole = tokenizer.apply_chat_template(prompt + completion, tokenize=True)
        head, whole = _ids(head), _ids(whole)
    else:
        eos = tokenizer.eos_token or ""
        text = completion if completion.endswith(eos) else completion + eos
        head = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        whole = tokenizer(prompt + text, add_special_tokens=True)["input_ids"]
    shared = 0
    for a, b in zip(head, whole, strict=False):
        if a != b:
            break
        shared += 1
    shared = max(shared, 1)  # the first completion token is predicted from at least one
    return list(whole[:shared]), list(whole[shared:])


def _ids(found: Any) -> list[int]:
    """apply_chat_template's ids, whether it returns a list or a BatchEncoding."""
    if isinstance(found, Mapping):
        found = found["input_ids"]
    return list(found)
