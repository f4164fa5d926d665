"""Question -> passage pairs for an embedding model (``task: embedding``), and its retrieval data.

A pair is a question, the passage that answers it (the chunk it was generated from) and the
document the passage came from. Pairs come from

- a document source: the records ``lfm.dataset`` builds keep each pair's chunk in
  ``metadata.passage`` and its document in ``metadata.source``; documents are held out whole;
- local files: JSONL/JSON/CSV records with ``question`` (or ``query``/``anchor``) and ``passage``
  (or ``positive``), and optionally ``document``; whole documents are held out by a seeded hash.

The evaluation corpus is every passage (training and held-out), as a retriever's index would
hold them; the held-out documents' questions are the queries. See embedding_train.py for the
training itself and evaluation/retrieval.py for the scores.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RuntimeConfigError
from .sources import DOCUMENT_SOURCES, load_document_splits, load_records

if TYPE_CHECKING:
    from .data import DatasetSpec

PathLike = str | os.PathLike[str]
QUESTION_KEYS = ("question", "query", "anchor", "instruction")
PASSAGE_KEYS = ("passage", "positive", "context")


@dataclass(frozen=True)
class Pair:
    question: str
    passage: str
    document: str  # where the passage came from: the split keeps a document on one side


@dataclass(frozen=True)
class RetrievalData:
    """Training pairs, held-out pairs, and the corpus the evaluation searches."""

    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    passages: dict[str, str] = field(default_factory=dict)  # passage id -> text, every passage

    def queries(self) -> dict[str, str]:
        return {f"q{i}": pair.question for i, pair in enumerate(self.test)}

    def relevant(self) -> dict[str, set[str]]:
        return {f"q{i}": {passage_id(pair.passage)} for i, pair in enumerate(self.test)}

    def summary(self) -> str:
        documents = len({p.document for p in self.train}), len({p.document for p in self.test})
        return (
            f"{len(self.train)} training pairs from {documents[0]} documents, "
            f"{len(self.test)} held-out questions from {documents[1]} documents, "
            f"{len(self.passages)} passages"
        )


def passage_id(passage: str) -> str:
    """A passage's id in the corpus: its text's hash (a passage two pairs share is one entry)."""
    return hashlib.sha256(passage.encode("utf-8")).hexdigest()[:16]


def load_pairs(spec: DatasetSpec, base_dir: PathLike, tokenizer_name: str | None) -> RetrievalData:
    """Build (a document source) or read (local files) the pairs, split by document."""
    if spec.source_type in DOCUMENT_SOURCES:
        train_records, test_records = load_document_splits(spec, base_dir, tokenizer_name)
        train = _pairs(train_records, "the training records")
        test = _pairs(test_records, "the held-out records") if test_records is not None else []
    else:
        every = _pairs(load_records(spec, base_dir), f"dataset.source.path {spec.path}")
        train, test = split_by_document(every, spec.holdout_ratio, spec.seed)
    if not train:
        raise RuntimeConfigError("dataset.source.path: no training pairs; add documents or pairs")
    if spec.holdout_ratio and not test:
        raise RuntimeConfigError(
            "dataset.validation.split_ratio: no document could be held out for the evaluation "
            f"(an empty split; {len({p.document for p in train})} document(s) in all); add "
            "documents, or give pairs a `document` field"
        )
    passages = {passage_id(p.passage): p.passage for p in (*train, *test)}
    return RetrievalData(tuple(train), tuple(test), dict(sorted(passages.items())))


def _pairs(records: Iterable[Mapping[str, Any]], where: str) -> list[Pair]:
    return [pair_from_record(record, index, where) for index, record in enumerate(records)]


def pair_from_record(record: Mapping[str, Any], index: int, where: str = "the data") -> Pair:
    """One record as a Pair; a record without a question or a passage is a config error."""
    meta = record.get("metadata") if isinstance(record.get("metadata"), Mapping) else {}
    question = _first_text(record, QUESTION_KEYS) or _user_message(record)
    passage = _first_text(record, PASSAGE_KEYS) or _first_text(meta, ("passage",))
    if not question:
        raise RuntimeConfigError(
            f"{where}: record {index + 1} has no question (a `question`, `query` or `anchor` "
            "field, or an alpaca `instruction`)"
        )
    if not passage:
        raise RuntimeConfigError(
            f"{where}: record {index + 1} has no passage (a `passage` or `positive` field, or "
            "metadata.passage from `lfm dataset create` for task: embedding); an embedding "
            "model learns which passage answers which question"
        )
    document = record.get("document") or meta.get("source") or passage_id(passage)
    return Pair(question, passage, str(document))


def _first_text(record: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _user_message(record: Mapping[str, Any]) -> str:
    for message in record.get("messages") or record.get("conversations") or []:
        if isinstance(message, Mapping) and message.get("role") in ("user", "human"):
            return str(message.get("content") or "").strip()
    return ""


def split_by_document(pairs: list[Pair], ratio: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out about ``ratio`` of the documents whole (a seeded hash decides, stably)."""
    if not ratio:
        return pairs, []
    documents = sorted({p.document for p in pairs}, key=lambda d: _rank(d, seed))
    held = set(documents[: max(1, round(len(documents) * ratio))]) if len(documents) > 1 else set()
    return [p for p in pairs if p.document not in held], [p for p in pairs if p.document in held]


def _rank(document: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{document}".encode()).hexdigest()


def write_pairs(path: Path, pairs: Iterable[Pair]) -> None:
    """A JSONL of pairs (question, passage, document): what was trained or held out."""
    import json

    lines = [json.dumps(vars(p), ensure_ascii=False) for p in pairs]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


TRAIN_PAIRS, HELDOUT_PAIRS = "train_pairs.jsonl", "heldout_pairs.jsonl"

# What a training run leaves in its output folder beside the trained model, and serving never
# reads: resume checkpoints (optimizer state, several times the model's size) and the pairs
# train.py writes (the training data itself). `lfm register`, `lfm deploy` and the serving image's
# .dockerignore (Dockerfile.serve.dockerignore: **/checkpoint-*/ and **/*_pairs.jsonl) all leave
# them out, at any depth; the output folder keeps them for resuming and for evaluate.py.
LEFTOVER_DIRS = ("checkpoint-*",)
LEFTOVER_FILES = ("*_pairs.jsonl",)


def training_leftover(name: str, is_dir: bool) -> bool:
    """Whether a file or folder named ``name`` is a training leftover (see LEFTOVER_DIRS)."""
    patterns = LEFTOVER_DIRS if is_dir else LEFTOVER_FILES
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def leftovers_note(left_out: Iterable[str], where: str) -> str | None:
    """One line naming the training leftovers left out of ``where``; None when there were none."""
    names = sorted(left_out)
    if not names:
        return None
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return (
        f"note: left out of {where}: {shown} (training leftovers: resume checkpoints and the "
        "pairs train.py trained on; the output folder keeps them)"
    )


def read_pairs(output_dir: PathLike) -> RetrievalData:
    """The pairs train.py wrote beside the model: what evaluate.py scores (the same split)."""
    import json

    out = Path(output_dir)
    loaded: list[list[Pair]] = []
    for name in (TRAIN_PAIRS, HELDOUT_PAIRS):
        path = out / name
        if not path.is_file():
            raise RuntimeConfigError(f"{path} does not exist; run train.py first")
        lines = path.read_text(encoding="utf-8").splitlines()
        loaded.append([Pair(**json.loads(line)) for line in lines if line.strip()])
    train, test = loaded
    passages = {passage_id(p.passage): p.passage for p in (*train, *test)}
    return RetrievalData(tuple(train), tuple(test), dict(sorted(passages.items())))
