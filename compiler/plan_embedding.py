"""The plan of an embedding model (`task: embedding`): what train.py and evaluate.py write out.

train.py calls sentence-transformers by its own names: `SentenceTransformerTrainingArguments`
(the generation bundle's TrainingArguments values, less the language-model-only ones, plus the
batch sampler), `losses.<loss>(model)`, `mine_hard_negatives`; evaluate.py its
`InformationRetrievalEvaluator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .methods import Arg
from .methods.base import Code
from .requirements import constraints

# TrainingArguments that only mean something for a causal language model.
_GENERATION_ONLY = ("use_liger_kernel", "eval_steps")
# Ranking losses draw negatives from the batch: a duplicate passage there is a false negative.
NO_DUPLICATES = "no_duplicates"
# Config loss names sentence-transformers 6 deprecated -> the class and arguments it recommends
# instead (the same loss: MultipleNegativesRankingLoss ranking both ways, each direction its own
# softmax).
LOSS_CALLS: dict[str, tuple[str, tuple[Arg, ...]]] = {
    "MultipleNegativesSymmetricRankingLoss": (
        "MultipleNegativesRankingLoss",
        (
            Arg(
                "directions",
                Code('("query_to_doc", "doc_to_query")'),
                "question -> passage and back",
            ),
            Arg("partition_mode", "per_direction", "a softmax per direction (the symmetric loss)"),
        ),
    ),
}
# sentence-transformers; matplotlib draws evaluate.py's base-vs-tuned chart.
EMBEDDING_PACKAGES = ("matplotlib", "sentence-transformers")


@dataclass(frozen=True)
class EmbeddingPlan:
    loss: str  # the config's name: a class in sentence_transformers.losses (or a LOSS_CALLS key)
    hard_negatives: int
    hard_negative_margin: float
    max_seq_length: int
    batch_size: int  # for mining and evaluation: the training batch size
    data_summary: str  # where the pairs come from and what is held out

    @property
    def summary(self) -> str:
        negatives = (
            f"{self.hard_negatives} hard negative(s) per pair mined from the other training "
            f"passages (relative margin {self.hard_negative_margin:g})"
            if self.hard_negatives
            else "in-batch negatives only"
        )
        return f"question -> passage pairs; {self.loss} with {negatives}"

    @property
    def loss_class(self) -> str:
        """The class train.py calls (not a deprecated one)."""
        return LOSS_CALLS[self.loss][0] if self.loss in LOSS_CALLS else self.loss

    @property
    def loss_arguments(self) -> tuple[Arg, ...]:
        """Keyword arguments after ``model`` in the loss call."""
        return LOSS_CALLS[self.loss][1] if self.loss in LOSS_CALLS else ()


def embedding_plan(cfg: dict[str, Any]) -> EmbeddingPlan:
    emb = cfg["embedding"]
    return EmbeddingPlan(
        loss=emb["loss"],
        hard_negatives=emb["hard_negatives"],
        hard_negative_margin=emb["hard_negative_margin"],
        max_seq_length=emb["max_seq_length"],
        batch_size=cfg["fine_tuning"]["training"]["batch_size"],
        data_summary=_data_summary(cfg["dataset"]),
    )


def _data_summary(ds: dict[str, Any]) -> str:
    ratio = ds["validation"]["split_ratio"]
    held = f"{ratio:.0%} of documents held out whole" if ratio else "no documents held out"
    if ds["source"]["type"] in ("documents", "rag_documents"):
        source = "documents -> question/passage pairs (each question with the chunk it came from)"
    else:
        source = "question/passage records (`question`, `passage`, optional `document`)"
    return f"{source}; {held}."


def embedding_arguments(arguments: tuple[Arg, ...]) -> tuple[Arg, ...]:
    """The generation bundle's TrainingArguments, made SentenceTransformerTrainingArguments."""
    out = []
    for arg in arguments:
        if arg.name in _GENERATION_ONLY:
            continue
        if arg.name == "eval_strategy":
            arg = Arg("eval_strategy", "no", "retrieval is scored by evaluate.py, base and tuned")
        out.append(arg)
    out.append(Arg("batch_sampler", NO_DUPLICATES, "no passage twice in a batch"))
    return tuple(out)


def embedding_requirements() -> tuple[str, ...]:
    pins = constraints()
    return tuple(pins[name] for name in EMBEDDING_PACKAGES)
