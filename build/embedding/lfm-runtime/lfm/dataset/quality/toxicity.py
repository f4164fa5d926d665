"""Toxicity scoring with a pluggable scorer.

The offline default counts abusive words and phrases from a small built-in list: it catches
insults and threats in generated text without a model. A better scorer (a classifier, a
moderation API) plugs in as ``"module:function"``, a function from text to a score in [0, 1].
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from lfm.runtime import trust

from ..errors import DatasetError

Scorer = Callable[[str], float]

# Abuse, threats and harassment; kept short: this default is a floor, not a classifier.
ABUSIVE = (
    "idiot", "idiots", "moron", "morons", "imbecile", "stupid", "dumbass", "loser", "losers",
    "scum", "bastard", "bastards", "bitch", "bitches", "asshole", "assholes", "shit", "shitty",
    "fuck", "fucking", "fucked", "fucker", "crap", "damn", "retard", "retarded", "worthless",
    "pathetic", "disgusting", "hate you", "shut up", "kill you", "kill yourself", "die in",
    "go to hell", "piece of garbage", "piece of trash",
)  # fmt: skip
_ABUSE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in ABUSIVE) + r")\b", re.I)
_WORD = re.compile(r"\w+")


def wordlist_score(text: str) -> float:
    """Share of abusive terms, scaled so one insult in a short sentence scores about 0.5."""
    words = len(_WORD.findall(text))
    if not words:
        return 0.0
    hits = len(_ABUSE.findall(text))
    return min(1.0, hits * 10 / max(words, 20))


def load_scorer(spec: str | None) -> Scorer:
    """The default scorer, or the ``module:function`` named by ``spec`` when the user allowed
    that module (see lfm.runtime.trust: a config alone cannot make lfm import code)."""
    if not spec or spec == "wordlist":
        return wordlist_score
    module_name, _, attribute = spec.partition(":")
    problem = trust.module_problem(module_name, "quality_control.toxicity_scorer")
    if problem:
        raise DatasetError(problem)
    try:
        scorer = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise DatasetError(
            f"toxicity scorer {spec!r} could not be loaded ({exc}); give 'module:function'"
        ) from None
    if not callable(scorer):
        raise DatasetError(f"toxicity scorer {spec!r} is not a function")
    return scorer  # type: ignore[no-any-return]
