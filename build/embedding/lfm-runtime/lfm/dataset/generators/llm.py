"""Q&A generation with a language model behind a ``complete(prompt) -> text`` client.

Chunks are sent concurrently (``concurrency`` threads), or, to a client that batches (a local
model's ``complete_many``), all of a document's chunks at once; each reply is parsed as a JSON
list of ``{"question", "answer"}`` objects, or failing that as ``Q: ... / A: ...`` lines. A
reply that yields nothing is counted as a failure in the report rather than stopping the run.

The same model can judge pairs (``judge``): a 1-5 rating of whether the question is clear and
answerable from its text and the answer right, which quality control scores and can filter on.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..model import Chunk, Pair
from .base import GenerationSettings

QA_PROMPT = """Write {count} question-answer pairs that a reader could answer from the text below.
Use only facts stated in the text; answers are one to three sentences.
Reply with JSON only: [{{"question": "...", "answer": "..."}}]

Text:
{text}"""

JUDGE_PROMPT = """Rate this question and answer, written from the text below.
5: the question is clear and answerable from the text, and the answer is correct and complete.
3: usable, but vague or partly answered. 1: malformed question, or a wrong or unrelated answer.
Reply with one digit from 1 to 5.

Text:
{text}

Question: {question}
Answer: {answer}"""
JUDGE_TOKENS = 4  # a digit, and room for a space or a full stop before it

PARAPHRASE_PROMPT = """Rewrite this question with different wording and the same meaning.
Reply with the rewritten question only.

Question: {question}"""

_QA_LINES = re.compile(
    r"Q(?:uestion)?\s*[:.]\s*(.+?)\s*\n\s*A(?:nswer)?\s*[:.]\s*(.+?)(?=\n\s*Q|\Z)", re.S
)


class LLMGenerator:
    def __init__(self, client: Callable[..., str], settings: GenerationSettings) -> None:
        self.client = client
        self.name = getattr(client, "name", "llm")
        self.concurrency = max(1, settings.concurrency)
        self._lock = threading.Lock()
        # Documents and their chunks are both handled in parallel: this caps requests in flight.
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._own: dict[str, int] = {
            "prompts": 0, "unparsable_replies": 0, "failed_requests": 0, "unparsable_judgements": 0,
        }  # fmt: skip
        # Called with 1 after each chunk's reply: the command line's progress bar.
        self.on_chunk: Callable[[int], None] | None = None

    @property
    def stats(self) -> dict[str, int]:
        """Our counters and the client's (requests, retries, cache hits)."""
        with self._lock:
            return {**self._own, **getattr(self.client, "stats", {})}

    def pairs(self, chunks: list[Chunk], count: list[int]) -> list[Pair]:
        jobs = [(chunk, n) for chunk, n in zip(chunks, count, strict=True) if n > 0]
        prompts = [QA_PROMPT.format(count=n, text=chunk.text) for chunk, n in jobs]
        replies = self._complete_all(prompts, progress=True)
        return [
            pair
            for (chunk, n), reply in zip(jobs, replies, strict=True)
            for pair in self._parse(reply, chunk, n)
        ]

    def paraphrase(self, questions: list[str]) -> list[str | None]:
        replies = self._complete_all([PARAPHRASE_PROMPT.format(question=q) for q in questions])
        return [_paraphrased(q, r) for q, r in zip(questions, replies, strict=True)]

    def judge(self, pairs: list[Pair]) -> list[float | None]:
        """Each pair's rating, scaled to [0, 1] (None where the reply held no rating)."""
        prompts = [
            JUDGE_PROMPT.format(text=p.chunk.text, question=p.question, answer=p.answer)
            for p in pairs
        ]
        scores = [_rating(r) for r in self._complete_all(prompts, JUDGE_TOKENS)]
        for _ in range(scores.count(None)):
            self._count("unparsable_judgements")
        return scores

    def _parse(self, reply: str | None, chunk: Chunk, count: int) -> list[Pair]:
        if reply is None:
            return []
        found = parse_pairs(reply)[:count]
        if not found:
            self._count("unparsable_replies")
        return [Pair(q, a, chunk, "llm") for q, a in found]

    def _complete_all(
        self, prompts: list[str], max_new_tokens: int | None = None, *, progress: bool = False
    ) -> list[str | None]:
        """Replies in order: in batches where the client batches, else from ``concurrency``
        threads; None for a request that failed."""
        many = getattr(self.client, "complete_many", None)
        if many is not None:
            for _ in prompts:
                self._count("prompts")
            replies: list[str | None] = list(many(prompts, max_new_tokens))
            if progress and self.on_chunk is not None:
                self.on_chunk(len(prompts))
            return replies

        def one(prompt: str) -> str | None:
            reply = self._complete(prompt, max_new_tokens)
            if progress and self.on_chunk is not None:
                self.on_chunk(1)
            return reply

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, prompts))

    def _complete(self, prompt: str, max_new_tokens: int | None = None) -> str | None:
        self._count("prompts")
        try:
            with self._slots:
                if max_new_tokens is None:
                    return self.client(prompt)
                return self.client(prompt, max_new_tokens)
        except GenerationFailed:
            self._count("failed_requests")
            return None

    def _count(self, key: str) -> None:
        with self._lock:
            self._own[key] += 1


class GenerationFailed(Exception):
    """A request that still failed after every retry: this chunk gets no pairs."""


def _paraphrased(question: str, reply: str | None) -> str | None:
    line = reply.strip().splitlines()[0].strip().strip('"') if reply and reply.strip() else ""
    return line if line and line.lower() != question.lower() else None


def _rating(reply: str | None) -> float | None:
    """The judge's rating 1-5 as (rating - 1) / 4: the first lone digit once the scale itself
    ("(1-5)", "1 to 5", "out of 5") is taken out of the reply."""
    text = re.sub(r"\(?\b1\s*(?:-|to)\s*5\b\)?|\bout of 5\b|/\s*5\b", " ", reply or "")
    found = re.search(r"(?<![\d.])([1-5])(?![\d])", text)
    return (int(found.group(1)) - 1) / 4 if found else None


def parse_pairs(reply: str) -> list[tuple[str, str]]:
    """``(question, answer)`` pairs from a model's reply: JSON first, then Q:/A: lines."""
    start, end = reply.find("["), reply.rfind("]")
    if 0 <= start < end:
        try:
            items = json.loads(reply[start : end + 1])
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list):
            pairs = [
                (str(i["question"]).strip(), str(i["answer"]).strip())
                for i in items
                if isinstance(i, dict) and i.get("question") and i.get("answer")
            ]
            if pairs:
                return pairs
    return [(q.strip(), a.strip()) for q, a in _QA_LINES.findall(reply) if q.strip() and a.strip()]
