"""Per-record quality checks, run in order; the first that fails names the removal reason.

Order: length, personal data (redact or drop; in the messages and in a kept passage), language,
toxicity, a malformed question, heuristic quality score, grounding in the source chunk, coherence
(when scored). Domain relevance needs the whole document collection (:mod:`.relevance`) and
duplicates need the records before (:mod:`.dedup`): both are judged later, in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lfm.runtime.dataset_gates import GateError, parse_gate

from ..errors import DatasetError
from . import heuristics, pii, questions
from .toxicity import Scorer

PII_MODES = ("off", "redact", "drop")
PASSAGE = "passage"  # metadata key of an embedding pair's source chunk (dataset create)
# Removal reasons, in the order the checks run (the report lists every one, even at zero).
REASONS = (
    "too_short",
    "too_long",
    "pii",
    "wrong_language",
    "toxic",
    "malformed_question",
    "low_judge_score",
    "low_quality",
    "ungrounded",
    "incoherent",
    "off_domain",
    "exact_duplicate",
    "near_duplicate",
)


@dataclass(frozen=True)
class QualitySettings:
    min_length: int = 0  # characters of prompt + response
    max_length: int = 0  # 0: no limit
    language: str | None = None  # ISO 639-1; None: any
    pii: str = "redact"
    toxicity_filter: bool = False
    toxicity_threshold: float = 0.1
    toxicity_scorer: str | None = None  # "module:function"; None: the offline word list
    min_quality_score: float = 0.0
    question_check: bool = True  # drop questions cut from clause fragments (.questions)
    model_judge: bool = False  # the generator's model rates each pair (an LLM generator only)
    min_judge_score: float = 0.0  # drop pairs it rates below this (0-1: rating 1-5 scaled)
    factual_verification: bool = False
    factual_consistency: float = 0.5  # minimum grounding when factual_verification is on
    duplicate_detection: bool = True
    near_duplicate_threshold: float = 0.85  # estimated Jaccard similarity of word trigrams
    # Dataset gates on report metrics, e.g. (("diversity_score", ">0.7"),); see ..gates.
    gates: tuple[tuple[str, Any], ...] = ()
    coverage_analysis: bool = True  # include the coverage section in the report
    coherence_scoring: bool = False  # score each record's coherence (reported)
    min_coherence_score: float = 0.0  # drop records below it (scored when above 0)
    domain_relevance: bool = False  # score each record against the documents (reported)
    min_domain_relevance: float = 0.0  # drop records below it (scored when above 0)

    @property
    def judges(self) -> bool:
        """The generator's model rates each pair when asked to, or filtered on."""
        return self.model_judge or self.min_judge_score > 0

    @property
    def scores_relevance(self) -> bool:
        """Domain relevance is scored when asked for, filtered on, or gated."""
        gated = any(metric == "domain_relevance" for metric, _ in self.gates)
        return self.domain_relevance or self.min_domain_relevance > 0 or gated

    def __post_init__(self) -> None:
        if self.pii not in PII_MODES:
            raise DatasetError(f"pii {self.pii!r} is not one of {', '.join(PII_MODES)}")
        if self.max_length and self.max_length < self.min_length:
            raise DatasetError(
                f"maximum_length {self.max_length} is below minimum_length {self.min_length}"
            )
        if not 0 < self.near_duplicate_threshold <= 1:
            raise DatasetError("near_duplicate_threshold must be in (0, 1]")
        for metric, threshold in self.gates:
            try:
                parse_gate(metric, threshold)
            except GateError as exc:
                raise DatasetError(str(exc)) from None


@dataclass
class Item:
    """One example on its way through quality control."""

    messages: list[dict[str, str]]
    source: str | None = None  # the document it came from (splits keep documents whole)
    context: str | None = None  # the chunk it was generated from (grounding)
    group: str = ""  # augmented variants share their original's group (not duplicates)
    chunk: int | None = None  # index of the source chunk (coverage)
    metadata: dict[str, Any] | None = None
    kind: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    pii_found: dict[str, int] = field(default_factory=dict)
    signature: Any = None  # MinHash values, computed where the record is assessed

    @property
    def prompt(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] != "assistant")

    @property
    def response(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "assistant")

    @property
    def text(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


def assess(item: Item, settings: QualitySettings, scorer: Scorer) -> str | None:
    """Score ``item`` (redacting personal data in place); the reason to drop it, or None."""
    length = len(item.text)
    if length < settings.min_length:
        return "too_short"
    if settings.max_length and length > settings.max_length:
        return "too_long"
    if settings.pii != "off":
        redacted = [pii.redact(m["content"]) for m in item.messages]
        # task: embedding keeps the source chunk beside the messages (metadata.passage): it is
        # written out too, so it is redacted (or dropped on) and counted like them.
        passage = (item.metadata or {}).get(PASSAGE)
        kept = pii.redact(passage) if isinstance(passage, str) else None
        for _, found in [*redacted, *([kept] if kept else [])]:
            for kind, n in found.items():
                item.pii_found[kind] = item.pii_found.get(kind, 0) + n
        if item.pii_found:
            if settings.pii == "drop":
                return "pii"
            item.messages = [
                {**m, "content": text} for m, (text, _) in zip(item.messages, redacted, strict=True)
            ]
            if kept is not None and item.metadata is not None:
                item.metadata = {**item.metadata, PASSAGE: kept[0]}
    if settings.language and detect_language(item.text) not in (settings.language, None):
        return "wrong_language"
    _score(item, scorer if settings.toxicity_filter else None)
    if settings.toxicity_filter and item.scores["toxicity"] > settings.toxicity_threshold:
        return "toxic"
    if settings.question_check and item.scores.get("question_form") == 0:
        return "malformed_question"
    if item.scores.get("judge", 1.0) < settings.min_judge_score:
        return "low_judge_score"
    if item.scores["quality"] < settings.min_quality_score:
        return "low_quality"
    grounded = item.scores.get("grounding")
    if (
        settings.factual_verification
        and grounded is not None
        and (grounded < settings.factual_consistency)
    ):
        return "ungrounded"
    if settings.coherence_scoring or settings.min_coherence_score:
        item.scores["coherence"] = heuristics.coherence(item.prompt, item.response)
        if item.scores["coherence"] < settings.min_coherence_score:
            return "incoherent"
    return None


def _score(item: Item, scorer: Scorer | None) -> None:
    rep = heuristics.repetition(item.text)
    symbols = heuristics.symbol_ratio(item.text)
    grounded = heuristics.grounding(item.response, item.context)
    item.scores.update(repetition=round(rep, 4), symbol_ratio=round(symbols, 4))
    if grounded is not None:
        item.scores["grounding"] = round(grounded, 4)
    # The user's own words: the last user message, without the passage a RAG-style record
    # appends to it (a question inside the passage is not the record's question).
    said = [m["content"] for m in item.messages if m["role"] == "user"]
    prompt = said[-1] if said else ""
    passage = item.context or ""
    shown = bool(passage) and passage in prompt
    if shown:
        prompt = prompt.replace(passage, "")
    asked = questions.question_in(prompt) if item.response else None
    if asked is not None:
        problem = questions.question_problem(asked, with_passage=shown)
        item.scores["question_form"] = 0.0 if problem else 1.0
        item.scores["answer_overlap"] = questions.answer_overlap(asked, item.response)
    item.scores["quality"] = heuristics.quality_score(
        rep,
        symbols,
        grounded,
        item.response,
        asked=_asked_parts(item.scores, item.response) if asked else None,
        judged=item.scores.get("judge"),
    )
    if scorer is not None:
        item.scores["toxicity"] = round(float(scorer(item.text)), 4)


def _asked_parts(scores: dict[str, float], answer: str) -> tuple[float, ...]:
    """Question form, and the answer's overlap with the question when the answer is a sentence
    (a short answer, "William Shakespeare.", need not repeat "Who wrote Hamlet?")."""
    if len(answer.split()) >= heuristics.SENTENCE_WORDS:
        return scores["question_form"], scores["answer_overlap"]
    return (scores["question_form"],)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text`` (langdetect, seeded so reruns agree); None when unsure."""
    if len(text.strip()) < 20:
        return None
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    DetectorFactory.seed = 0
    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return None
    return str(best.lang).split("-")[0] if best.prob >= 0.7 else None
