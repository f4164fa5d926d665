"""Is a record's question one a person would keep, and does its answer take the question up?

Catches what template generators make of sentence fragments ("What is When a variable?",
"What are Because these?", "What is Your code?"): a subject that opens with a capitalized
pronoun, conjunction or clause opener (a sentence's first word pasted into a template), a
pronoun that is the whole subject ("What is it?"), or a question that ends on an article or a
conjunction. A model's or a person's well-formed question passes ("What does it mean for a
function to be pure?", "What does WHERE do in SQL?", "What is a list made of?"); imperative
instructions (no question mark) are not judged, and neither is text in other scripts.
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
# Pronouns that cannot be a whole subject: "What is it?" asks nothing.
PRONOUNS = frozenset("i you he she it we they me him us them this these those there".split())  # noqa: SIM905
# A question does not end on these ("What is If the?", "What are Once a?").
DANGLING = frozenset(
    """the a an and or but if because although though whereas unless nor my your our their
    his her its""".split()  # noqa: SIM905
)
# Words a template error repeats ("What is the the module?"); other repeats can be language.
REPEATABLE_ERRORS = frozenset("the a an is are of to in and".split())  # noqa: SIM905
# Where a sentence ends: a stop, question or exclamation mark, or a colon, then a space and a
# capital; or a line break. A dot inside a name (os.path, 3.12) or a colon in code ends nothing.
_SENTENCE_END = re.compile(r"[.!?:]\s+(?=[A-Z\"'¿¡])|\n")
_WH_SUBJECT = re.compile(
    r"^\s*(?:what|who|which)\s+(?:is|are|was|were|does|do|did|can|may|should)\s+(\S+)", re.I
)
_WORD = re.compile(r"[^\W\d_][\w']*")
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
    if not question.isascii() and sum(c.isascii() for c in question) < len(question) / 2:
        return None  # another script: these checks know English only
    words = _WORD.findall(question)
    if len(words) < 2:
        return "too short to be a question"
    opener = _WH_SUBJECT.match(question)
    if opener:
        word = opener.group(1)
        bare = word.strip("\"'()?.,!:;")
        refused = CLAUSE_WORDS - POINTING_AT_PASSAGE if with_passage else CLAUSE_WORDS
        quoted = word[:1] in "\"'`"  # a keyword in quotes: "What is 'this' in JavaScript?"
        capital = bare[:1].isupper() and not (bare.isupper() and len(bare) > 1)  # not WHERE
        if bare.lower() in refused and capital and not quoted and len(words) > 3:
            return f"its subject starts with {bare!r}, a pronoun or clause word"
        if bare.lower() in PRONOUNS and words[-1] == bare and not with_passage:
            return f"its whole subject is {bare!r}"
    last = question.rstrip(" ?").split()[-1] if question.rstrip(" ?") else ""
    if last.lower() in DANGLING:  # the text's own last word: "... `is` and `==`?" ends on code
        return f"it ends on {last!r}"
    repeated = _REPEATED.search(question)
    if repeated and repeated.group(1).lower() in REPEATABLE_ERRORS:
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
