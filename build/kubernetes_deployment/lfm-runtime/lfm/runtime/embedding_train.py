"""What an embedding bundle's train.py uses around sentence-transformers' own classes.

- :func:`load_encoder`: the base model as a SentenceTransformer, by path or hub id, offline-safe;
- :func:`training_dataset`: the pairs as a ``datasets.Dataset`` (anchor, positive[, negative_i]),
  hard negatives mined with sentence-transformers' ``mine_hard_negatives`` from the other
  training passages (never from held-out documents);
- :class:`Trainer`: SentenceTransformerTrainer with lfm's checkpoints (written aside, renamed
  into place), metrics.jsonl ordering and resume behaviour (see checkpoints.Trainer);
- :func:`save_outputs`: the trained model folder, loadable with ``SentenceTransformer(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.util import mine_hard_negatives

from . import checkpoints
from .alerts import AlertCallback
from .embedding import Pair
from .errors import RuntimeConfigError
from .launch import announce

PathLike = str | os.PathLike[str]


def load_encoder(name_or_path: str, *, base_dir: PathLike, max_seq_length: int | None) -> Any:
    """The base (or a trained) model as a SentenceTransformer. A plain transformers encoder
    (no modules.json) gets sentence-transformers' default: the encoder plus mean pooling.
    ``max_seq_length`` None keeps the model's own."""
    source = _source(name_or_path, Path(base_dir))
    try:
        model = SentenceTransformer(source, device=_device())
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeConfigError(
            f"base_model: cannot load {name_or_path!r} as a sentence-transformers model ({first})"
        ) from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def _source(name_or_path: str, base_dir: Path) -> str:
    if name_or_path.startswith(("./", "../", "/", "~")):
        path = (base_dir / Path(name_or_path).expanduser()).resolve()
        if not path.is_dir():
            raise RuntimeConfigError(
                f"base_model: {path} is not a directory (a relative path in a config is "
                "relative to the config file)"
            )
        return str(path)
    return name_or_path


def _device() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "cpu"


def training_dataset(
    model: Any, pairs: tuple[Pair, ...], *, negatives: int, margin: float, batch_size: int
) -> Any:
    """(anchor, positive) rows, plus ``negative_1..n`` mined from the other passages."""
    from datasets import Dataset

    rows = Dataset.from_dict(
        {"anchor": [p.question for p in pairs], "positive": [p.passage for p in pairs]}
    )
    if not negatives:
        return rows
    corpus = sorted({p.passage for p in pairs})
    if len(corpus) <= negatives:
        raise RuntimeConfigError(
            f"embedding.hard_negatives is {negatives}, but the training data has only "
            f"{len(corpus)} distinct passages; lower it or add documents"
        )
    mined = mine_hard_negatives(
        rows,
        model,
        corpus=corpus,
        relative_margin=margin or None,  # 0: no margin filter
        num_negatives=negatives,
        sampling_strategy="top",
        output_format="n-tuple",
        batch_size=batch_size,
        verbose=False,
    )
    if len(mined) < len(rows):
        announce(dropped_pairs_note(len(rows) - len(mined), len(rows), negatives, margin))
    if len(mined) == 0:
        raise RuntimeConfigError(
            "embedding.hard_negatives: no pair kept a mined negative; lower "
            "embedding.hard_negative_margin or set hard_negatives: 0"
        )
    return mined


def dropped_pairs_note(dropped: int, pairs: int, negatives: int, margin: float) -> str:
    """What mine_hard_negatives' "n-tuple" output did: a row needs all ``negatives`` negatives,
    so a pair short of them is left out of the training data whole (question and passage),
    not trained without a negative."""
    found = "no other passage" if negatives == 1 else f"fewer than {negatives} other passages"
    below = f"at least {margin * 100:g}% below" if margin else "below"
    return (
        f"hard negatives: {dropped} of {pairs} pairs were left out of training altogether "
        f"(question and passage, not only their negatives): among the passages the base model "
        f"ranks closest to each one's question, it found {found} scoring {below} the pair's own; "
        "lower embedding.hard_negative_margin or hard_negatives to train on them"
    )


class Trainer(checkpoints.Trainer, SentenceTransformerTrainer):
    """SentenceTransformerTrainer, with lfm's checkpoint handling (checkpoints.Trainer first in
    the method order: atomic checkpoints, metrics callback first, resumable cadence)."""


def save_outputs(trainer: Any, output_dir: PathLike) -> None:
    """Save the trained model (modules, pooling, tokenizer) to ``output_dir``."""
    out = Path(output_dir)
    trainer.save_model(str(out))  # modules.json: what the registry knows an embedding model by
    AlertCallback.raise_if_stopped(trainer, out)
    announce(
        f"done: the trained embedding model is in {out}/ (SentenceTransformer({str(out)!r})); "
        "metrics in metrics.json"
    )
