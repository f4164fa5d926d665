"""A deterministic generator that needs no model.

Questions come from three places in a chunk, in this order of preference:
definitions ("X is ...", "X refers to ..."), the section heading, and key sentences (those with
the most frequent content words of the chunk). Each answer is text extracted from the chunk, so
every pair is grounded in its source by construction.
"""

from __future__ import annotations

import re
from collections import Counter

from ..model import Chunk, Pair
from .text import STOPWORDS, content_words, sentences

_DEFINITION = re.compile(
    r"^(?:(?:An?|The)\s+)?(?P<term>[A-Za-z][\w\-]*(?:\s+[\w\-]+){0,4}?)\s+"
    r"(?P<verb>is|are|refers to|means|describes|denotes)\s+(?P<rest>.{12,})$"
)


class OfflineGenerator:
    name = "offline"

    def __init__(self) -> None:
        self.stats: dict[str, int] = {"chunks": 0}

    def pairs(self, chunks: list[Chunk], count: list[int]) -> list[Pair]:
        made: list[Pair] = []
        asked: set[str] = set()
        for chunk, wanted in zip(chunks, count, strict=True):
            self.stats["chunks"] += 1
            for pair in _candidates(chunk):
                if wanted <= 0:
                    break
                key = pair.question.lower()
                if key not in asked:
                    asked.add(key)
                    made.append(pair)
                    wanted -= 1
        return made

    def paraphrase(self, questions: list[str]) -> list[str | None]:
        return [None] * len(questions)  # no model: augmentation uses templates instead


def _candidates(chunk: Chunk) -> list[Pair]:
    said = sentences(chunk.text)
    pairs = [p for s in said if (p := _definition(s, chunk))]
    if chunk.heading and said:
        answer = " ".join(said[:2])
        pairs.append(Pair(_heading_question(chunk.heading), answer, chunk, "heading"))
    used = {p.answer for p in pairs}
    pairs.extend(_key_sentence_pairs([s for s in said if s not in used], chunk))
    return pairs


def _definition(sentence: str, chunk: Chunk) -> Pair | None:
    match = _DEFINITION.match(sentence)
    if not match:
        return None
    term = match.group("term").strip()
    if term.lower() in STOPWORDS or term.lower().split()[0] in {"it", "this", "that", "there"}:
        return None
    verb = match.group("verb")
    if verb in ("is", "are"):
        question = f"What {verb} {_article(term, sentence)}{term}?"
    else:
        question = f"What does {term} {verb.split()[0].rstrip('s')}{' to' if 'to' in verb else ''}?"
    return Pair(question, sentence, chunk, "definition")


def _article(term: str, sentence: str) -> str:
    first = sentence.split()[0]
    return f"{first.lower()} " if first in ("A", "An", "The") and not term.startswith(first) else ""


def _heading_question(heading: str) -> str:
    heading = heading.strip().rstrip(":.")
    if heading.endswith("?"):
        return heading
    return f'What does the section "{heading}" explain?'


def _key_sentence_pairs(said: list[str], chunk: Chunk) -> list[Pair]:
    """Sentences ranked by how many of the chunk's frequent words they hold."""
    freq = Counter(w for s in said for w in content_words(s))
    scored = []
    for position, sentence in enumerate(said):
        words = content_words(sentence)
        if len(words) < 4:
            continue
        score = sum(freq[w] for w in set(words)) / len(set(words)) ** 0.5
        scored.append((-score, position, sentence, words))
    pairs = []
    for _, _, sentence, _words in sorted(scored)[:8]:
        topic = _topic(sentence, freq, chunk.text)
        question = f"What does the text say about {topic}"
        if chunk.heading:
            question += f" in the context of {chunk.heading.strip().rstrip(':.')}"
        pairs.append(Pair(question + "?", sentence, chunk, "key_sentence"))
    return pairs


def _topic(sentence: str, freq: Counter[str], text: str) -> str:
    """A phrase of two content words that recurs in the chunk ("base station"), else the
    sentence's most frequent content word."""
    tokens = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'\-]+", sentence)]
    useful = [w if content_words(w) else None for w in tokens]
    lowered = " ".join(text.lower().split())
    pairs = [
        (a, b)
        for a, b in zip(useful, useful[1:], strict=False)
        if a and b and lowered.count(f"{a} {b}") >= 2
    ]
    if pairs:
        a, b = max(pairs, key=lambda p: (freq[p[0]] + freq[p[1]], p))
        return f"{a} {b}"
    words = [w for w in useful if w]
    return max(words, key=lambda w: (freq[w], len(w), w))
