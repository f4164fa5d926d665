"""A deterministic generator that needs no model.

A question is asked only where a sentence's grammar gives one (tags and phrases from
:mod:`.grammar`): the sentence opens with a noun phrase that is its subject and means something
on its own, and the verb after it fits a question pattern:

    A virtual environment is a self-contained directory tree ...  -> What is a virtual environment?
    The module used to create ... is called venv.                 -> What is the module used to create ... called?
    The glob module provides a function for making file lists ... -> What does the glob module provide?
    A module can contain executable statements ...                -> What can a module contain?
    Strings can be concatenated with the + operator ...           -> How can strings be concatenated?
    To implement a queue, use collections.deque ...               -> How do you implement a queue?
    If a finally clause is present, the finally clause ...        -> What happens if a finally clause is present?

The answer is that sentence (with the next one when it goes on about the same subject: "It
..."), so every pair is whole sentences of its chunk that answer the question. Subjects that need
the text before them are refused: pronouns, demonstratives and quantifiers ("this", "some",
"many users"), clause openers ("When a variable", "Once you"), ordinals and words pointing
elsewhere ("the first argument", "the same value"), and "the" with one common noun ("the
error"). Sentences that are code, prompts or tables are never answers, and a question that
quality control would drop as malformed (:mod:`..quality.questions`) is never asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..model import Chunk, Pair
from ..quality.questions import question_problem
from .grammar import Token, tag
from .text import sentences

# Subjects starting with these words lean on the text before them.
LEANING = frozenset(
    """this that these those such some many most all both several any no another
    other few much either neither one its their our your my his her it they we you i he she
    there here when if because once since although though while as after before until unless
    whether so but and or however also then now thus therefore instead""".split()  # noqa: SIM905
)
# Words inside a subject that point to something said elsewhere.
POINTING = frozenset(
    """first second third fourth fifth last next previous preceding following above below former
    latter same other such said aforementioned resulting returned corresponding respective
    this that these those it its they their them here there example examples""".split()  # noqa: SIM905
)
# Objects that are only a quantity: "differs a bit from ..." asks nothing.
AMOUNTS = (["a", "bit"], ["a", "lot"], ["a", "little"], ["a", "few"])
# "X allows you to ...": the question asks what X lets one do.
ENABLING = frozenset({"allows", "lets", "enables", "allow", "let", "enable"})
COPULAS = frozenset({"is", "are"})
NAMING = frozenset({"called", "named", "known"})
MODALS = frozenset({"can", "may", "must", "should", "will", "cannot"})
MEANS = frozenset({"with", "by", "using", "through", "via"})
# Verbs whose object is not what a reader would ask for ("X seems ...", "X makes sense").
VAGUE_VERBS = frozenset(
    """be have do seem seems make makes get gets go goes come comes look looks mean means say says
    tend tends want wants need needs try tries begin begins""".split()  # noqa: SIM905
)
# Prepositions a question can end with: "What does X depend on?", "refer to", "differ from".
PARTICLES = frozenset({"on", "to", "from", "over", "into", "with", "for", "as"})
OBJECT_START = ("DT", "JJ", "NN", "NNS", "NNP", "NNPS", "CD", "PRP$", "VBG")
MAX_SUBJECT_TOKENS = 12
# Tags after which a determiner may open a noun phrase inside a subject ("the name of a module").
OPENS_PHRASE = frozenset({"IN", "VBN", "VBG", "TO", "CC", "(", "VB"})
ANSWER_WORDS = (6, 70)  # an answer sentence's length in words
PREFERENCE = {
    "definition": 0, "naming": 0, "howto": 0, "purpose": 1, "means": 1, "ability": 2,
    "enabling": 2, "action": 2, "condition": 2,
}  # fmt: skip


class OfflineGenerator:
    name = "offline"

    def __init__(self) -> None:
        self.stats: dict[str, int] = {"chunks": 0, "sentences": 0, "questions": 0}

    def pairs(self, chunks: list[Chunk], count: list[int]) -> list[Pair]:
        made: list[Pair] = []
        asked: set[str] = set()  # one question once per document
        for chunk, wanted in zip(chunks, count, strict=True):
            self.stats["chunks"] += 1
            # The best kinds first, then in reading order (sorted() is stable).
            for pair in sorted(self._candidates(chunk), key=lambda p: PREFERENCE[p.kind]):
                if wanted > 0 and pair.question.lower() not in asked:
                    asked.add(pair.question.lower())
                    made.append(pair)
                    wanted -= 1
        self.stats["questions"] += len(made)
        return made

    def paraphrase(self, questions: list[str]) -> list[str | None]:
        return [None] * len(questions)  # no model: augmentation uses templates instead

    def _candidates(self, chunk: Chunk) -> Iterator[Pair]:
        said = sentences(chunk.text)
        self.stats["sentences"] += len(said)
        for position, sentence in enumerate(said):
            made = question_for(sentence, chunk.text)
            if made is None or question_problem(made[0]):  # what quality control would drop
                continue
            question, kind = made
            answer = _as_statement(sentence)
            follow = said[position + 1] if position + 1 < len(said) else ""
            if _continues(follow):
                answer += " " + _as_statement(follow)
            yield Pair(question, answer, chunk, kind)


def question_for(sentence: str, context: str = "") -> tuple[str, str] | None:
    """The question ``sentence`` answers and its kind, or None when it answers none well;
    ``context`` (the chunk) tells a proper noun from a capitalized first word."""
    if not is_prose(sentence) or _points_away(sentence):
        return None
    tokens = tag(sentence)
    if len(tokens) > 3 and tokens[0].lower == "to" and tokens[1].tag == "VB":
        return _howto_question(sentence, tokens)
    if len(tokens) > 4 and tokens[0].lower in ("if", "when"):
        return _condition_question(sentence, tokens)
    verb_at = _main_verb(tokens)
    if verb_at is None:
        return None
    subject = _subject(sentence, tokens[:verb_at], context)
    if subject is None:
        return None
    verb, rest = tokens[verb_at], tokens[verb_at + 1 :]
    plural = verb.tag == "VBP" or verb.lower == "are"
    if verb.lower in COPULAS:
        return _copula_question(verb.lower, subject, rest)
    if verb.lower in MODALS:
        return _modal_question(verb.lower, subject, rest)
    if verb.tag not in ("VBZ", "VBP") or not rest or [t.lower for t in rest[:2]] in AMOUNTS:
        return None
    base = _base_form(verb.lower) if verb.tag == "VBZ" else verb.lower
    does = "do" if plural else "does"
    if verb.lower in ENABLING and len(rest) > 2 and rest[0].lower in ("you", "us", "users"):
        return f"What {does} {subject} {base} {rest[0].lower} to do?", "enabling"
    if base in VAGUE_VERBS or not base.isalpha():
        return None
    if rest[0].tag in OBJECT_START:
        return f"What {does} {subject} {base}?", "action"
    if rest[0].lower in PARTICLES and len(rest) > 1 and rest[1].tag in OBJECT_START:
        return f"What {does} {subject} {base} {rest[0].lower}?", "action"  # "depend on"
    return None


def _howto_question(sentence: str, tokens: list[Token]) -> tuple[str, str] | None:
    """'To iterate over a sequence, use ...' -> 'How do you iterate over a sequence?'."""
    clause = _opening_clause(sentence, tokens)
    if clause is None or "PRP" in (t.tag for t in tokens[1 : len(clause.split())]):
        return None
    return f"How do you {clause.split(' ', 1)[1]}?", "howto"


def _condition_question(sentence: str, tokens: list[Token]) -> tuple[str, str] | None:
    """'If you quit the interpreter, the definitions are lost.' -> 'What happens if you quit
    the interpreter?'; the condition needs a subject of its own and a verb."""
    clause = _opening_clause(sentence, tokens)
    if clause is None or not (tokens[1].lower in ("you", "a", "an", "the") or tokens[1].is_noun):
        return None
    if not any(t.tag in ("VBZ", "VBP", "MD") for t in tokens[2:8]):
        return None
    return f"What happens {tokens[0].lower} {clause.split(' ', 1)[1]}?", "condition"


def _opening_clause(sentence: str, tokens: list[Token]) -> str | None:
    """The words before the sentence's first comma, when they say something on their own."""
    comma = next((i for i, t in enumerate(tokens) if t.word == ","), None)
    if comma is None or not 3 <= comma <= MAX_SUBJECT_TOKENS + 3:
        return None
    words = {t.lower for t in tokens[1:comma]}
    if POINTING.intersection(words) or words & {"so", "not", "necessary", "possible"}:
        return None
    text = sentence[tokens[0].start : tokens[comma - 1].end]
    if text.count("(") != text.count(")") or text.count('"') % 2 or not text.isascii():
        return None
    return text


def _main_verb(tokens: list[Token]) -> int | None:
    """Where the subject ends: the first finite verb (present tense or a modal)."""
    for index, token in enumerate(tokens[: MAX_SUBJECT_TOKENS + 1]):
        if token.tag in ("VBZ", "VBP", "MD") or (token.lower in COPULAS and index):
            return index or None
        if token.tag in (",", ":", "WDT", "WP", "PRP", "VBD") or token.word in (";", "—"):
            return None  # an aside, a relative clause or a past-tense story: not a subject
    return None


def _subject(sentence: str, tokens: list[Token], context: str) -> str | None:
    """The subject as written, first letter lowered where it is an ordinary word; None when it
    leans on text elsewhere or is not one phrase."""
    first = tokens[0]
    if first.lower in LEANING or not (first.tag in ("DT", "JJ") or first.is_noun):
        return None
    if first.tag == "DT" and first.lower not in ("a", "an", "the", "each", "every"):
        return None
    if first.lower.endswith("ing"):
        return None  # a gerund: "Referencing the name a hereafter is ..." asks nothing
    words = [t.lower for t in tokens]
    if POINTING.intersection(words) or not any(t.is_noun for t in tokens):
        return None
    if any(t.tag.startswith("RB") for t in tokens) or _runs_together(tokens):
        return None
    if any(
        t.tag == "DT" and p.tag not in OPENS_PHRASE
        for p, t in zip(tokens, tokens[1:], strict=False)
    ):
        return None  # "references use | the standard syntax": a verb was read as a noun
    nouns = [t for t in tokens if t.is_noun]
    specific = any(t.tag.startswith("NNP") or _is_code(t.word) for t in tokens)
    if first.lower == "the" and len(nouns) == 1 and not specific:
        return None  # "the error": which one? the text before said
    text = sentence[first.start : tokens[-1].end].strip()
    if text.count("(") != text.count(")") or text.count('"') % 2:
        return None
    if first.tag == "DT" or not (_is_code(first.word) or _proper(first, context)):
        text = text[0].lower() + text[1:]
    return text


def _runs_together(tokens: list[Token]) -> bool:
    """Two noun phrases back to back ("Attribute references use | the standard syntax"): the
    tagger missed the verb between them, so this is not one subject. A plural noun followed by
    another noun is the same ("Small files lfm | reads ...": a relative clause's subject)."""
    return any(
        (b.chunk == "B-NP" and a.chunk in ("B-NP", "I-NP"))
        or (a.tag in ("NNS", "NNPS") and b.is_noun)
        for a, b in zip(tokens, tokens[1:], strict=False)
    )


def _proper(token: Token, context: str) -> bool:
    """A name (Python, BaseException), not a word capitalized only because it opens the
    sentence (Tuples, Standard): capitalized mid-sentence in the chunk, or tagged a singular
    proper noun and written capitalized more often than not there."""
    word = re.escape(token.word)
    if re.search(rf"[a-z,]\s+{word}\b", context):
        return True
    # A plural is a common noun the tagger took for a name because it opens the sentence.
    if token.tag != "NNP" or token.word.endswith("s"):
        return False
    written = len(re.findall(rf"\b{word}\b", context))
    return written > len(re.findall(rf"\b{word.lower()}\b", context))


def _copula_question(verb: str, subject: str, rest: list[Token]) -> tuple[str, str] | None:
    words = [t.lower for t in rest]
    if not words or words[0] == "not":
        return None
    if words[0] in NAMING and (words[0] != "known" or words[1:2] == ["as"]):
        return f"What {verb} {subject} called?", "naming"
    if words[0] == "used" and words[1:2] in (["to"], ["for"]):
        return f"What {verb} {subject} used for?", "purpose"
    if rest[0].tag == "VBN":
        return _passive_question(verb, subject, rest)
    # "X is similar to Y" -> "What is X similar to?"
    predicate = rest[0].tag.startswith("JJ") and words[1:2] and words[1] in PARTICLES - {"as"}
    # After "to" only a plain noun phrase: "simple to use" is an infinitive, not an object.
    nominal = ("DT", "NNS", "NNP", "PRP$") if words[1:2] == ["to"] else OBJECT_START
    if predicate and rest[2:3] and rest[2].tag in nominal:
        return f"What {verb} {subject} {words[0]} {words[1]}?", "definition"
    if words[0] == "not" or not rest[0].tag.startswith(("DT", "JJ", "NN", "CD")):
        return None
    if rest[0].tag.startswith("JJ") and not (
        len(rest) > 1 and rest[1].tag.startswith(("NN", "JJ"))
    ):
        return None  # "X is optional": an adjective describes X without defining it
    return f"What {verb} {subject}?", "definition"


def _passive_question(verb: str, subject: str, rest: list[Token]) -> tuple[str, str] | None:
    """ "Comparisons are combined using ..." -> "How are comparisons combined?"."""
    if len(rest) > 1 and rest[0].tag == "VBN" and any(t.lower in MEANS for t in rest[1:4]):
        return f"How {verb} {subject} {rest[0].lower}?", "means"
    return None


def _modal_question(modal: str, subject: str, rest: list[Token]) -> tuple[str, str] | None:
    if len(rest) < 2 or modal in ("cannot", "will") or rest[0].lower == "not":
        return None
    if rest[0].lower == "be" and rest[1].tag == "VBN":
        means = next((t for t in rest[2:6] if t.lower in MEANS), None)
        if means is not None:
            return f"How {modal} {subject} be {rest[1].lower}?", "means"
        return None
    verb, after = rest[0], rest[1]
    # An object follows the verb: the question asks for it.
    if verb.tag == "VB" and verb.lower not in VAGUE_VERBS and after.tag in OBJECT_START:
        return f"What {modal} {subject} {verb.lower}?", "ability"
    return None


def _base_form(verb: str) -> str:
    """The bare infinitive of a third-person verb: provides -> provide, copies -> copy."""
    irregular = {"has": "have", "does": "do", "goes": "go"}
    if verb in irregular:
        return irregular[verb]
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|zz|o)es$", verb):
        return verb[:-2]
    return verb[:-1] if verb.endswith("s") and not verb.endswith("ss") else verb


def _is_code(word: str) -> bool:
    """An identifier rather than an English word: str(), sys.argv, __init__, HTTPServer."""
    return bool(re.search(r"[_().\d]|[a-z][A-Z]", word)) or (word.isupper() and len(word) > 1)


def is_prose(sentence: str) -> bool:
    """A sentence a person would accept as an answer: words, not code, prompts or a table."""
    words = sentence.split()
    if not ANSWER_WORDS[0] <= len(words) <= ANSWER_WORDS[1]:
        return False
    if not sentence[0].isupper() or sentence.rstrip()[-1] not in ".!:":
        return False
    if any(mark in sentence for mark in (">>>", "...", "$ ", "#!", "{", "}", "==")):
        return False
    alphabetic = sum(1 for w in words if re.fullmatch(r"[A-Za-z][a-z'’\-]*[,.;:]?", w))
    return alphabetic / len(words) >= 0.7


def _points_away(sentence: str) -> bool:
    """It ends on what it cannot say itself: "... many surprises like this.", "... of these."."""
    words = re.findall(r"[A-Za-z]+", sentence)
    return bool(words) and words[-1].lower() in POINTING


def _as_statement(sentence: str) -> str:
    """A sentence that introduced an example ("... as follows:") ends with a full stop."""
    sentence = sentence.rstrip()
    return sentence[:-1] + "." if sentence.endswith(":") else sentence


def _continues(sentence: str) -> bool:
    """The next sentence goes on about the same subject ("It also ...") and is prose."""
    first = sentence.split(" ", 1)[0].lower()
    return first in ("it", "they", "this") and is_prose(sentence) and sentence.endswith(".")
