"""Score one model on one evaluation set: the metrics the config names, as flat numbers.

Keys of the result: `perplexity`, `bleu`, `chrf`, `rouge1`, `rouge2`, `rougeL`,
`exact_match`, `f1`, `rag_accuracy`, `latency_p50_ms`, `latency_p95_ms`, `tokens_per_second`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import RuntimeConfigError
from . import metrics as text_metrics
from .evalset import EvalSet
from .model_eval import GenerationSettings, LoadedModel, generate, perplexity

METRICS = (
    "perplexity",
    "bleu",
    "chrf",
    "rouge",
    "exact_match",
    "f1",
    "rag_accuracy",
    "latency",
)
# Metrics scored on generated answers; the others need no generation.
GENERATIVE = ("bleu", "chrf", "rouge", "exact_match", "f1", "rag_accuracy", "latency")
# Scores where lower is better (everything else: higher is better).
LOWER_IS_BETTER = ("perplexity", "latency_p50_ms", "latency_p95_ms")
# An answer counts toward rag_accuracy when its token F1 with the reference reaches this.
RAG_F1_THRESHOLD = 0.5


def check_metrics(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise RuntimeConfigError(
            f"evaluation.metrics: unknown metric(s) {', '.join(unknown)}; use any of "
            f"{', '.join(METRICS)}"
        )


def score(
    loaded: LoadedModel,
    evalset: EvalSet,
    names: Sequence[str],
    settings: GenerationSettings,
) -> dict[str, float]:
    """Compute `names` for `loaded` on `evalset`; answers are generated once for all of them."""
    return score_and_answers(loaded, evalset, names, settings)[0]


def score_and_answers(
    loaded: LoadedModel,
    evalset: EvalSet,
    names: Sequence[str],
    settings: GenerationSettings,
) -> tuple[dict[str, float], list[Answer]]:
    """The scores, and the generated answer to each prompt (none when no metric generates)."""
    check_metrics(names)
    scores: dict[str, float] = {}
    if "perplexity" in names:
        scores["perplexity"] = perplexity(loaded, evalset.examples, settings.batch_size)
    wanted = [n for n in names if n in GENERATIVE]
    if not wanted:
        return scores, []
    examples = tuple(e for e in evalset.examples if e.prompt)
    if not examples:
        raise RuntimeConfigError(
            f"evaluation: {', '.join(wanted)} need prompt/response records (alpaca or chat); "
            f"{evalset.source} holds plain text, which only perplexity can score"
        )
    if "rag_accuracy" in wanted and not any(e.context for e in examples):
        raise RuntimeConfigError(
            f"evaluation.metrics rag_accuracy: no record in {evalset.source} carries its source "
            f"chunk; add a 'context' (or alpaca 'input') field with the retrieved text"
        )
    generations = generate(loaded, examples, settings)
    predictions, references = generations.texts, [e.reference for e in examples]
    if "bleu" in wanted:
        scores["bleu"] = text_metrics.bleu(predictions, references)
    if "chrf" in wanted:
        scores["chrf"] = text_metrics.chrf(predictions, references)
    if "rouge" in wanted:
        scores.update(text_metrics.rouge(predictions, references))
    if "exact_match" in wanted:
        scores["exact_match"] = text_metrics.exact_match(predictions, references)
    if "f1" in wanted:
        scores["f1"] = text_metrics.f1(predictions, references)
    if "rag_accuracy" in wanted:
        scores["rag_accuracy"] = rag_accuracy(
            [p for p, e in zip(predictions, examples, strict=True) if e.context],
            [e.reference for e in examples if e.context],
        )
    if "latency" in wanted:
        scores["latency_p50_ms"] = 1000 * text_metrics.percentile(generations.latencies, 50)
        scores["latency_p95_ms"] = 1000 * text_metrics.percentile(generations.latencies, 95)
        scores["tokens_per_second"] = (
            generations.new_tokens / generations.seconds if generations.seconds else 0.0
        )
    answers = [
        Answer(e.question, e.reference, p, text_metrics.f1_one(p, e.reference))
        for e, p in zip(examples, predictions, strict=True)
    ]
    return scores, answers


@dataclass(frozen=True)
class Answer:
    """One held-out question, its reference answer, what the model answered and their token F1."""

    question: str
    reference: str
    answer: str
    f1: float


def rag_accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of answers (generated with their source chunk) whose token F1 reaches 0.5."""
    hits = [
        text_metrics.f1_one(p, r) >= RAG_F1_THRESHOLD
        for p, r in zip(predictions, references, strict=True)
    ]
    return sum(hits) / len(hits)


def score_qa(
    loaded: LoadedModel, evalset: EvalSet, settings: GenerationSettings
) -> dict[str, float]:
    """A custom Q&A set: exact match and token F1, and rag_accuracy when the records carry their
    source chunk; `accuracy` is the exact-match rate."""
    names = ["exact_match", "f1"]
    if any(e.context for e in evalset.examples):
        names.append("rag_accuracy")
    result = score(loaded, evalset, names, settings)
    return {"accuracy": result["exact_match"], **result}
