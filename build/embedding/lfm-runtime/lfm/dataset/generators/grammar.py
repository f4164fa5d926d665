"""Part-of-speech tags and phrase chunks of one English sentence, with character offsets.

The tagger is TextBlob's copy of Pattern's: a rule-based Brill tagger and chunker whose lexicon
ships inside the wheel, so it runs offline, deterministically and in about 0.1 ms per sentence
(its lexicon takes a second to load, once per process). Tags are Penn Treebank's (``NN``,
``VBZ``, ``MD``...), chunks are IOB phrase tags (``B-NP``, ``I-VP``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import DatasetError

# Typographic quotes become plain ones (one character each, so offsets still hold): the
# tokenizer knows "can't" but splits "can’t" into nouns.
_PLAIN = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})
MAX_SENTENCE_CHARS = 600  # longer "sentences" are code or tables run together: not tagged


@dataclass(frozen=True)
class Token:
    word: str
    tag: str  # Penn Treebank part of speech
    chunk: str  # IOB phrase tag: B-NP, I-NP, B-VP, O...
    start: int  # character offsets in the sentence
    end: int

    @property
    def lower(self) -> str:
        return self.word.lower()

    @property
    def is_noun(self) -> bool:
        return self.tag.startswith("NN")

    @property
    def is_verb(self) -> bool:
        return self.tag.startswith("VB") or self.tag == "MD"


def tag(sentence: str) -> list[Token]:
    """The tokens of ``sentence`` (all of them, even where the tagger sees several sentences);
    [] for text too long to be a sentence or whose tokens cannot be placed back in it."""
    if len(sentence) > MAX_SENTENCE_CHARS:
        return []
    plain = sentence.translate(_PLAIN)
    tokens: list[Token] = []
    cursor = 0
    for part in _parse(plain):
        for word, pos, chunk, *_ in part:
            start = plain.find(word, cursor)
            if start < 0:  # the tokenizer rewrote it (rare): no offsets, no questions
                return []
            cursor = start + len(word)
            tokens.append(Token(word, pos, chunk, start, cursor))
    return tokens


def _parse(text: str) -> list[list[list[str]]]:
    tagged = _parser()(text, tokenize=True, tags=True, chunks=True, relations=False, lemmata=False)
    return list(tagged.split())


@lru_cache(maxsize=1)
def _parser() -> Any:
    try:
        from textblob.en import parse
    except ImportError:
        raise DatasetError(
            "the offline Q&A generator needs the dataset extra: pip install 'lfm[dataset]'"
        ) from None
    return parse
