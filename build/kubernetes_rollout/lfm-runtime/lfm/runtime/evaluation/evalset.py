"""The examples an evaluation scores: prompts, references, and token ids for perplexity.

Three sources, all read with the training data's own loaders and formats:

- the holdout split `train.py` held out (same records, same tokenization, same seeded split),
- a whole file (`evaluation.test_set`, `lfm evaluate --dataset`),
- a Q&A file (`custom_evaluations`): JSONL of question/answer, with an optional `context`.

A record with a source chunk (`context`, or alpaca's `input`) is shown to the model with it; that
is what `rag_accuracy` scores.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import data, formats, labeling, links, paths, render, sources
from ..errors import RuntimeConfigError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class EvalExample:
    prompt: str  # the rendered text up to where the response starts
    reference: str  # the response the model should give
    context: str | None  # the source chunk shown in the prompt, if the record has one
    input_ids: tuple[int, ...]  # the whole example, tokenized as for training
    labels: tuple[int, ...]  # -100 outside the response (unless train_on_inputs)
    add_special_tokens: bool = True  # plain layouts get the tokenizer's bos; chat templates not
    question: str = ""  # the instruction or last user message as written (eval_examples.jsonl)


@dataclass(frozen=True)
class EvalSet:
    name: str
    source: str  # the file (or hub id) the records came from
    sha256: str  # of the data file's bytes; of the id and split for a hub dataset
    split: str  # "holdout" (train.py's eval split) or "all"
    examples: tuple[EvalExample, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "split": self.split,
            "examples": len(self.examples),
        }


def holdout_set(
    spec: data.DatasetSpec,
    tokenizer: Any,
    *,
    base_dir: PathLike | None = None,
    max_examples: int | None = None,
    chunk_tokenizer: str | None = None,
) -> EvalSet:
    """The examples `train.py` held out for evaluation (`dataset.validation.split_ratio`).

    For a document source, ``chunk_tokenizer`` is the base model train.py counted chunk tokens
    with (its tokenizer is part of the build's cache key); default: ``tokenizer``'s own.
    """
    if spec.holdout_ratio == 0:
        raise RuntimeConfigError(
            "evaluation: dataset.validation.split_ratio is 0, so training held nothing out; set "
            "a split_ratio, or point evaluation.test_set (lfm evaluate --dataset) at a file"
        )
    if spec.source_type in sources.DOCUMENT_SOURCES:
        chosen = _held_out_documents(spec, tokenizer, base_dir, chunk_tokenizer)
    else:
        records = data.load_records(spec, base_dir)
        chosen = _held_out_examples(records, spec, tokenizer)
    source, digest = _fingerprint(spec, base_dir)
    return EvalSet("holdout", source, digest, "holdout", _limit(chosen, max_examples))


def _held_out_examples(
    records: Any, spec: data.DatasetSpec, tokenizer: Any
) -> tuple[EvalExample, ...]:
    """Split exactly as training did: the same usable examples, the same seeded permutation."""
    examples = _examples(records, spec.format, tokenizer, spec.max_length, spec.train_on_inputs)
    indexed = _index_dataset(len(examples))
    _, held = data._holdout_split(indexed, spec.holdout_ratio, spec.seed)
    assert held is not None
    return tuple(examples[i] for i in sorted(held["index"]))


def _held_out_documents(
    spec: data.DatasetSpec, tokenizer: Any, base_dir: PathLike | None, chunk_tokenizer: str | None
) -> tuple[EvalExample, ...]:
    """The documents train.py held out: the test split of the same build (same settings and
    tokenizer, so the cached one), or, when only one document could be read, the same split of
    examples that training fell back to."""
    if chunk_tokenizer is not None:  # the name train.py's tokenizer was loaded by
        name: str | None = paths.resolve(chunk_tokenizer, base_dir)
    else:
        name = getattr(tokenizer, "name_or_path", None) or None
    train, test = data.load_document_splits(spec, base_dir, name)
    if test is None:
        return _held_out_examples(train, spec, tokenizer)
    return tuple(_examples(test, spec.format, tokenizer, spec.max_length, spec.train_on_inputs))


def file_set(
    path: PathLike,
    tokenizer: Any,
    *,
    name: str | None = None,
    base_dir: PathLike | None = None,
    format: str = "auto",
    max_length: int = 2048,
    max_examples: int | None = None,
) -> EvalSet:
    """Every record of a JSONL/JSON/CSV file (a test set or a custom Q&A set)."""
    spec = data.DatasetSpec(
        source_type="local", path=str(path), format=format, max_length=max_length, holdout_ratio=0
    )
    records = data.load_records(spec, base_dir)
    examples = _examples(records, format, tokenizer, max_length, train_on_inputs=False)
    source, digest = _fingerprint(spec, base_dir)
    label = name or Path(str(path)).stem
    return EvalSet(label, source, digest, "all", _limit(tuple(examples), max_examples))


def _examples(
    records: Any, fmt: str, tokenizer: Any, max_length: int, train_on_inputs: bool
) -> list[EvalExample]:
    """Parse, render and tokenize like training; keep the examples training would keep."""
    fmt = formats.detect_format(records[0]) if fmt == "auto" else fmt
    out = []
    for index, record in enumerate(records):
        record = _context_as_input(record)
        example = formats.parse_record(record, fmt, index)
        rendered = render.render(example, tokenizer, index)
        input_ids, labels = labeling.tokenize(
            rendered, tokenizer, max_length=max_length, train_on_inputs=train_on_inputs
        )
        if not labeling.has_targets(labels):
            continue  # training dropped it too: keep the split aligned
        prompt, reference = _prompt_and_reference(example, rendered)
        context = example.input if isinstance(example, formats.Alpaca) and example.input else None
        out.append(
            EvalExample(
                prompt,
                reference,
                context,
                tuple(input_ids),
                tuple(labels),
                rendered.add_special_tokens,
                _question(example),
            )
        )
    if not out:
        raise RuntimeConfigError(
            f"evaluation: none of the {len(records)} records has response tokens within "
            f"max_length={max_length}; check the data"
        )
    return out


def _context_as_input(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Q&A record's `context` (its source chunk) plays alpaca's `input` role."""
    if record.get("context") is not None and record.get("input") is None:
        return {**record, "input": record["context"]}
    return record


def _prompt_and_reference(example: formats.Example, rendered: render.Rendered) -> tuple[str, str]:
    """The text before the last response, and that response as the reference answer."""
    if isinstance(example, formats.Alpaca):
        reference = example.output
    elif isinstance(example, formats.Chat):
        replies = [m["content"] for m in example.messages if m["role"] == "assistant"]
        reference = replies[-1] if replies else ""
    else:  # plain text: nothing to answer, only perplexity applies
        return "", ""
    start = rendered.spans[-1][0] if rendered.spans else len(rendered.text)
    return rendered.text[:start], reference


def _question(example: formats.Example) -> str:
    if isinstance(example, formats.Alpaca):
        return example.instruction
    if isinstance(example, formats.Chat):
        asked = [m["content"] for m in example.messages if m["role"] == "user"]
        return asked[-1] if asked else ""
    return ""


def _index_dataset(size: int) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"index": list(range(size))})


def _fingerprint(spec: data.DatasetSpec, base_dir: PathLike | None) -> tuple[str, str]:
    if spec.source_type not in ("local", *sources.DOCUMENT_SOURCES):
        digest = hashlib.sha256(f"{spec.path}:{spec.split}".encode()).hexdigest()
        return spec.path, digest
    root = paths.resolve_local(spec.path, base_dir)
    # What the data can be read from: what a link points to outside the folder is not.
    files = links.folder_files(root).files if root.is_dir() else [root]
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.read_bytes())
    return str(root), sha.hexdigest()


def _limit(examples: Sequence[EvalExample], max_examples: int | None) -> tuple[EvalExample, ...]:
    return tuple(examples[:max_examples] if max_examples else examples)
