"""Augmentation: more ways to ask the same question, each a new example with the same answer.

Deterministic augmentations need no model: the question is rewritten with an instruction
template chosen by a hash of the question (so reruns agree). With an LLM generator, the
generator also paraphrases each question. Augmented pairs share their original's dedup group,
so duplicate removal does not undo them, and stay in their document's split.
"""

from __future__ import annotations

import hashlib

from .model import Pair

TEMPLATES = (
    "Answer the following question using the documentation: {question}",
    "{question} Answer in one or two sentences.",
    "Question: {question}\nGive a short, factual answer.",
    "Using only what the source says, answer: {question}",
    "I have a question about the documentation. {question}",
    "Explain briefly. {question}",
)


def template_variant(pair: Pair) -> Pair:
    digest = hashlib.sha256(pair.question.encode()).digest()
    template = TEMPLATES[digest[0] % len(TEMPLATES)]
    return Pair(template.format(question=pair.question), pair.answer, pair.chunk, "template")


def augment(pairs: list[Pair], paraphrases: list[str | None]) -> list[tuple[int, Pair]]:
    """For each pair: a template variant, and a paraphrase when the generator gave one; each
    with the index of the pair it came from."""
    out: list[tuple[int, Pair]] = []
    for index, (pair, paraphrase) in enumerate(zip(pairs, paraphrases, strict=True)):
        out.append((index, template_variant(pair)))
        if paraphrase:
            out.append((index, Pair(paraphrase, pair.answer, pair.chunk, "paraphrase")))
    return out
