"""Q&A generation with a language model behind a ``complete(prompt) -> text`` client.

Chunks are sent concurrently (``concurrency`` threads); each reply is parsed as a JSON list of
``{"question", "answer"}`` objects, or failing that as ``Q: ... / A: ...`` lines. A reply that
yields nothing is counted as a failure in the report rather than stopping the run.
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

PARAPHRASE_PROMPT = """Rewrite this question with different wording and the same meaning.
Reply with the rewritten question only.

Question: {question}"""

_QA_LINES = re.compile(
    r"Q(?:uestion)?\s*[:.]\s*(.+?)\s*\n\s*A(?:nswer)?\s*[:.]\s*(.+?)(?=\n\s*Q|\Z)", re.S
)


class LLMGenerator:
    def __init__(self, client: Callable[[str], str], settings: GenerationSettings) -> None:
        self.client = client
        self.name = getattr(client, "name", "llm")
        self.concurrency = max(1, settings.concurrency)
        self._lock = threading.Lock()
        # Documents and their chunks are both handled in parallel: this caps requests in flight.
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._own: dict[str, int] = {"prompts": 0, "unparsable_replies": 0, "failed_requests": 0}

    @property
    def stats(self) -> dict[str, int]:
        """Our counters and the client's (requests, retries, cache hits)."""
        with self._lock:
            return {**self._own, **getattr(self.client, "stats", {})}

    def pairs(self, chunks: list[Chunk], count: list[int]) -> list[Pair]:
        jobs = [(chunk, n) for chunk, n in zip(chunks, count, strict=True) if n > 0]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            results = list(pool.map(self._ask, jobs))
        return [pair for result in results for pair in result]

    def paraphrase(self, questions: list[str]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._paraphrase, questions))

    def _ask(self, job: tuple[Chunk, int]) -> list[Pair]:
        chunk, count = job
        reply = self._complete(QA_PROMPT.format(count=count, text=chunk.text))
        if reply is None:
            return []
        found = parse_pairs(reply)[:count]
        if not found:
            self._count("unparsable_replies")
        return [Pair(q, a, chunk, "llm") for q, a in found]

    def _paraphrase(self, question: str) -> str | None:
        reply = self._complete(PARAPHRASE_PROMPT.format(question=question))
        line = (reply or "").strip().splitlines()[0].strip().strip('"') if reply else ""
        return line if line and line.lower() != question.lower() else None

    def _complete(self, prompt: str) -> str | None:
        self._count("prompts")
        try:
            with self._slots:
                return self.client(prompt)
        except GenerationFailed:
            self._count("failed_requests")
            return None

    def _count(self, key: str) -> None:
        with self._lock:
            self._own[key] += 1


class GenerationFailed(Exception):
    """A request that still failed after every retry: this chunk gets no pairs."""


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
