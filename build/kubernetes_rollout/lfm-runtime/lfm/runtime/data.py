"""Supervised fine-tuning data: load, tokenize with response-only labels, split.

This is the entry point a bundle's ``train.py`` uses; the work is delegated to
:mod:`.sources` (reading records), :mod:`.formats` (record layouts),
:mod:`.render` (prompt layout) and :mod:`.labeling` (tokens and labels).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import formats, labeling, loss_positions, render
from . import packing as packing_module
from .errors import RuntimeConfigError
from .sources import (
    DOCUMENT_SOURCES,
    SOURCE_TYPES,
    DocumentBuilder,
    load_document_splits,
    load_records,
)

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

COLUMNS = ("input_ids", "attention_mask", "labels")

__all__ = ["DatasetSpec", "collator", "load_records", "load_sft_dataset"]


@dataclass(frozen=True)
class DatasetSpec:
    """The ``dataset`` section of a config, as the compiler renders it into ``train.py``.

    ``path`` is a file or directory for ``local`` sources (relative to the bundle)
    and a dataset id for ``hub``. ``holdout_ratio`` 0 means no eval split.
    """

    source_type: str
    path: str
    format: str
    max_length: int
    holdout_ratio: float
    train_on_inputs: bool = False
    seed: int = 42
    split: str = "train"
    # Document sources only: the settings the records are built with, and what builds them
    # (lfm.dataset.bundle.build_documents, handed over by train.py; see sources.DocumentBuilder).
    documents: dict[str, Any] | None = None
    build_documents: DocumentBuilder | None = None

    def __post_init__(self) -> None:
        if self.source_type not in SOURCE_TYPES:
            raise RuntimeConfigError(
                f"dataset.source.type {self.source_type!r} is not supported; use one of "
                f"{', '.join(SOURCE_TYPES)}"
            )
        if self.format not in formats.FORMATS + formats.PREFERENCE_FORMATS:
            raise RuntimeConfigError(
                f"dataset.preprocessing.format {self.format!r} is not supported; use one of "
                f"{', '.join(formats.FORMATS + formats.PREFERENCE_FORMATS)}"
            )
        if self.max_length < 2:
            raise RuntimeConfigError(
                f"dataset.preprocessing.max_length is {self.max_length}; it must be at least 2"
            )
        if not 0 <= self.holdout_ratio < 1:
            raise RuntimeConfigError(
                f"dataset.validation.split_ratio is {self.holdout_ratio}; use a value in [0, 1)"
            )


def load_sft_dataset(
    spec: DatasetSpec, tokenizer: Any, *, base_dir: str | os.PathLike[str] | None = None
) -> tuple[Dataset, Dataset | None]:
    """Load, tokenize and split; returns ``(train, eval)``, eval None when not requested.

    Both datasets have exactly the columns ``input_ids``, ``attention_mask`` and
    ``labels``; labels are -100 outside the responses unless ``train_on_inputs``.
    """
    if spec.source_type in DOCUMENT_SOURCES:
        return _documents_dataset(spec, tokenizer, base_dir)
    records = load_records(spec, base_dir)
    fmt = formats.detect_format(records[0]) if spec.format == "auto" else spec.format
    examples = _tokenize(records, fmt, spec, tokenizer)
    return _holdout_split(examples, spec.holdout_ratio, spec.seed)


def _documents_dataset(
    spec: DatasetSpec, tokenizer: Any, base_dir: str | os.PathLike[str] | None
) -> tuple[Dataset, Dataset | None]:
    """Records built from documents come split by source document already."""
    name = getattr(tokenizer, "name_or_path", None)
    train, test = load_document_splits(spec, base_dir, name or None)
    fmt = formats.detect_format(train[0]) if spec.format == "auto" else spec.format
    examples = _tokenize(train, fmt, spec, tokenizer)
    if spec.holdout_ratio == 0:
        return examples, None
    if test is None:
        logger.warning(
            "Only one document could be read: holding out examples instead of documents."
        )
        return _holdout_split(examples, spec.holdout_ratio, spec.seed)
    return examples, _tokenize(test, fmt, spec, tokenizer)


def collator(
    tokenizer: Any,
    *,
    packing: bool = False,
    max_length: int | None = None,
    model: Any = None,
    pad_to_multiple_of: int | None = None,
) -> Any:
    """The batch collator: packed (see :mod:`.packing`) or padded to the longest example.

    ``packing=True`` needs ``max_length`` and the model, which it prepares and checks first
    (:func:`packing.prepare_model`); a model that cannot pack falls back to padding with a
    warning that says why. Packing and padding train on the same tokens: only speed differs.
    Padded labels pad with -100; ``pad_to_multiple_of`` 8 suits GPU tensor cores (on a CPU it
    only adds pad tokens). Given the model, batches also say where the loss reads logits
    (:mod:`.loss_positions`), so the output layer skips the prompt tokens.
    """
    if packing and (max_length is None or model is None):
        raise RuntimeConfigError("packing needs max_length and the model")
    batches = _packed_or_padded(tokenizer, packing, max_length, model, pad_to_multiple_of)
    # Given the model, the output layer runs only where the loss reads it (.loss_positions).
    return batches if model is None else loss_positions.prepare(model, batches)


def _packed_or_padded(
    tokenizer: Any,
    packing: bool,
    max_length: int | None,
    model: Any,
    pad_to_multiple_of: int | None,
) -> Any:
    if packing:
        reason = packing_module.prepare_model(model, max_length)
        if reason is None:
            return packing_module.collator()
        logger.warning("Sample packing is off, padding batches instead: %s.", reason)
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(
        tokenizer,
        padding=True,
        label_pad_token_id=labeling.IGNORE_INDEX,
        pad_to_multiple_of=pad_to_multiple_of,
    )


def _tokenize(records: Dataset, fmt: str, spec: DatasetSpec, tokenizer: Any) -> Dataset:
    """Tokenize every record, dropping those left with nothing to learn."""

    def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[list[int]]]:
        out: dict[str, list[list[int]]] = {name: [] for name in COLUMNS}
        rows = [
            dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)
        ]
        for row, index in zip(rows, indices, strict=True):
            example = formats.parse_record(row, fmt, index)
            input_ids, labels = labeling.tokenize(
                render.render(example, tokenizer, index),
                tokenizer,
                max_length=spec.max_length,
                train_on_inputs=spec.train_on_inputs,
            )
            if labeling.has_targets(labels):
                out["input_ids"].append(input_ids)
                out["attention_mask"].append([1] * len(input_ids))
                out["labels"].append(labels)
        return out

    examples = records.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=records.column_names,
        load_from_cache_file=False,  # a cache hit would skip validation and drop counting
        desc="Tokenizing",
    )
    _report_dropped(len(records) - len(examples), len(records), spec.max_length)
    return examples


def _report_dropped(dropped: int, total: int, max_length: int) -> None:
    if dropped == total:
        raise RuntimeConfigError(
            f"dataset: none of the {total} examples has response tokens within "
            f"dataset.preprocessing.max_length={max_length}; raise max_length or check the data"
        )
    if dropped:
        logger.warning(
            "Dropped %d of %d examples with no response tokens within max_length=%d "
            "(empty responses or prompts longer than max_length).",
            dropped,
            total,
            max_length,
        )


def _holdout_split(examples: Dataset, ratio: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Deterministic train/eval split keeping at least one example on each side."""
    if ratio == 0:
        return examples, None
    total = len(examples)
    if total < 2:
        raise RuntimeConfigError(
            f"dataset.validation.split_ratio is {ratio} but only {total} usable example(s) "
            f"remain; add data or set split_ratio to 0"
        )
    n_eval = min(max(1, math.ceil(total * ratio)), total - 1)
    parts = examples.train_test_split(test_size=n_eval, seed=seed)
    return parts["train"], parts["test"]
