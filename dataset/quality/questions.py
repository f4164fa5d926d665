"""Is a record's question one a person would keep, and does its answer take the question up?

Catches what template generators make of sentence fragments ("What is When a variable?",
"What are Because these?", "What is Your code?"): a question whose subject opens with a
pronoun, a conjunction or a clause opener, or that ends on a word that cannot end one. A model's
or a person's well-formed question passes; imperative instructions (no question mark) are not
judged.
"""

from __future__ import annotations

import re

from ..generators.text import content_words

# Words that cannot open the subject of "What is/does X?": pronouns, demonstratives,
# conjunctions and sentence openers. Their presence means the subject was cut from a clause.
CLAUSE_WORDS = frozenset(
    """i you he she it we they me him us them my your his her its our their this these those
    when if because once since although though while whereas unless until after before as so
    but and or nor yet however therefore thus also then now here there where which who whom
    whose what why how whether""".split()  # noqa: SIM905
)
# What a question may point at when its record shows the passage (RAG-style records).
POINTING_AT_PASSAGE = frozenset({"this", "these", "those", "it", "its", "here", "there"})
# A question does not end on these ("What are Once you?", "What is If the?").
DANGLING = frozenset(
    """the a an and or but if when because since although though while so of you your
    we our they their he she his her its this these those that my""".split()  # noqa: SIM905
)
# Where a sentence ends: a stop, question or exclamation mark, or a colon, then a space; or a
# line break. A dot inside a name (os.path, 3.12) ends nothing.
_SENTENCE_END = re.compile(r"[.!?:]\s+|\n")
_WH_SUBJECT = re.compile(
    r"^\s*(?:what|who|which)\s+(?:is|are|was|were|does|do|did|can|may|should)\s+(\S+)", re.I
)
_WORD = re.compile(r"[A-Za-z']+")
_REPEATED = re.compile(r"\b(\w+)\s+\1\b", re.I)


def question_in(prompt: str) -> str | None:
    """The last question in a prompt (an instruction template may wrap it), or None."""
    end = prompt.rfind("?")
    if end < 0:
        return None
    starts = [m.end() for m in _SENTENCE_END.finditer(prompt, 0, end)]
    return prompt[starts[-1] if starts else 0 : end + 1].strip()


def question_problem(question: str, *, with_passage: bool = False) -> str | None:
    """Why ``question`` is not one a person would keep, or None. ``with_passage``: the record
    shows its source passage with the question, so "What does this function return?" may
    point at it."""
    words = _WORD.findall(question)
    if len(words) < 2:
        return "too short to be a question"
    opener = _WH_SUBJECT.match(question)
    refused = CLAUSE_WORDS - POINTING_AT_PASSAGE if with_passage else CLAUSE_WORDS
    if opener and opener.group(1).strip("\"'(").lower() in refused:
        return f"its subject starts with {opener.group(1)!r}, a pronoun or clause word"
    if words[-1].lower() in DANGLING:
        return f"it ends on {words[-1]!r}"
    repeated = _REPEATED.search(question)
    if repeated and repeated.group(1).lower() not in ("that", "had"):
        return f"{repeated.group(1)!r} is repeated"
    return None


def answer_overlap(question: str, answer: str) -> float:
    """Share of the question's content words (five-letter stems) that the answer takes up: an
    answer about something else scores near 0."""
    asked = {w[:5] for w in content_words(question)}
    if not asked:
        return 1.0
    said = {w[:5] for w in content_words(answer)}
    return round(len(asked & said) / len(asked), 4)
