"""Each quality filter with records it must remove and records it must keep."""

from __future__ import annotations

import pytest
from lfm.dataset.errors import DatasetError
from lfm.dataset.quality import Deduplicator, Item, QualitySettings, assess
from lfm.dataset.quality.dedup import signature
from lfm.dataset.quality.metrics import Metrics
from lfm.dataset.quality.pii import redact
from lfm.dataset.quality.toxicity import load_scorer, wordlist_score

SCORER = load_scorer(None)
GOOD_Q = "What does the base station store?"
GOOD_A = "The base station stores ninety days of readings and uploads them every hour."
CONTEXT = "The base station stores ninety days of readings and uploads them every hour to the web."


def item(question: str = GOOD_Q, answer: str = GOOD_A, context: str | None = CONTEXT) -> Item:
    return Item(
        [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        source="doc.md",
        context=context,
    )


def test_length_filters():
    settings = QualitySettings(min_length=40, max_length=200)
    assert assess(item(), settings, SCORER) is None
    assert assess(item("Hi?", "Yes."), settings, SCORER) == "too_short"
    assert assess(item(answer="word " * 100), settings, SCORER) == "too_long"


def test_pii_is_redacted_or_dropped():
    answer = "Write to ana.lopez@example.com or call (415) 555-0132 from 10.0.0.12 today."
    kept = item(answer=answer)
    assert assess(kept, QualitySettings(pii="redact"), SCORER) is None
    assert kept.response == "Write to [EMAIL] or call [PHONE] from [IP_ADDRESS] today."
    assert kept.pii_found == {"EMAIL": 1, "PHONE": 1, "IP_ADDRESS": 1}
    assert assess(item(answer=answer), QualitySettings(pii="drop"), SCORER) == "pii"
    assert assess(item(), QualitySettings(pii="drop"), SCORER) is None


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("card 4111 1111 1111 1111 on file", {"CREDIT_CARD": 1}),
        ("card 4111 1111 1111 1112 on file", {}),  # fails the Luhn check: not a card
        ("SSN 123-45-6789", {"SSN": 1}),
        ("host 2001:db8::8a2e:370:7334 is up", {"IP_ADDRESS": 1}),
        ("addr 2001:db8::1 is up", {"IP_ADDRESS": 1}),
        # Code is not personal data, though `::`, `::add` and `a::b` parse as IPv6 addresses.
        ("Message ::= SEQUENCE { id INTEGER }", {}),
        ("use std::io; let v = Vec::<u8>::new(); v.iter().map(::add);", {}),
        ("<T as Trait>::face(); (a::b); f :: Int -> Int", {}),
        ("loopback ::1 and link-local fe80::1", {}),
        ("version 1.2.3.4000 released", {}),  # not an IPv4 address
        ("IBAN DE89 3704 0044 0532 0130 00", {"IBAN": 1}),
        ("ninety days, 400 meters, 12 valves", {}),
        ("call +44 20 7946 0958 now", {"PHONE": 1}),
    ],
)
def test_pii_detectors(text, kinds):
    assert redact(text)[1] == kinds


def test_language_detection():
    settings = QualitySettings(language="en")
    assert assess(item(), settings, SCORER) is None
    german = item(
        "Was speichert die Basisstation?",
        "Die Basisstation speichert die Messwerte von neunzig Tagen und lädt sie stündlich hoch.",
        context=None,
    )
    assert assess(german, settings, SCORER) == "wrong_language"


def test_toxicity_filter_and_pluggable_scorer(monkeypatch):
    monkeypatch.setenv("LFM_TRUST_CODE", "tests_dataset_scorer")  # the user allows their module
    settings = QualitySettings(toxicity_filter=True)
    rude = item(answer="Only an idiot would ask that, shut up and read the manual you moron.")
    assert assess(rude, settings, SCORER) == "toxic"
    assert assess(item(), settings, SCORER) is None
    assert assess(rude, QualitySettings(), SCORER) is None  # filter off: kept
    assert wordlist_score("a perfectly polite sentence about soil probes") == 0.0
    custom = load_scorer("tests_dataset_scorer:always_toxic")
    assert assess(item(), settings, custom) == "toxic"


def test_bad_scorer_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LFM_TRUST_CODE", "no_such_module_xyz")
    with pytest.raises(DatasetError, match="module:function"):
        load_scorer("no_such_module_xyz:score")


def test_a_scorer_a_config_names_is_imported_only_where_the_user_allows_it(monkeypatch):
    monkeypatch.delenv("LFM_TRUST_CODE", raising=False)
    with pytest.raises(DatasetError, match="LFM_TRUST_CODE=tests_dataset_scorer"):
        load_scorer("tests_dataset_scorer:always_toxic")
    monkeypatch.setenv("LFM_TRUST_CODE", "os,subprocess")  # even allowed: never the stdlib
    for spec in ("os:system", "subprocess:getoutput"):
        with pytest.raises(DatasetError, match="standard library"):
            load_scorer(spec)


def test_quality_score_and_grounding():
    looping = item(answer="the probe the probe the probe the probe the probe the probe the probe")
    assert assess(looping, QualitySettings(min_quality_score=0.8), SCORER) == "low_quality"
    assert assess(item(), QualitySettings(min_quality_score=0.8), SCORER) is None
    invented = item(answer="Satellites relay telemetry through geostationary transponders nightly.")
    settings = QualitySettings(factual_verification=True, factual_consistency=0.5)
    assert assess(invented, settings, SCORER) == "ungrounded"
    assert assess(item(), settings, SCORER) is None
    symbols = item(answer="@@@ ### $$$ %%% ^^^ &&& *** ~~~ ||| <<< >>> {{{ }}}")
    assert assess(symbols, QualitySettings(min_quality_score=0.7), SCORER) == "low_quality"


def test_exact_and_near_duplicates():
    dedup = Deduplicator(0.8)
    base = " ".join(f"reading{i} arrives at the base station" for i in range(12))
    near = base.replace("reading5 arrives", "reading5 comes")  # 2 of 60 words changed
    other = "Probes measure soil moisture every ten minutes and report over a low power radio link."
    assert dedup.check(base, "a", signature(base)) is None
    assert dedup.check(base.upper(), "b", signature(base.upper())) == "exact_duplicate"
    assert dedup.check(near, "c", signature(near)) == "near_duplicate"
    assert dedup.check(other, "d", signature(other)) is None
    # An augmentation of "a" is similar on purpose: its group keeps it.
    variant = base.replace("reading1 arrives", "reading1 lands")
    assert dedup.check(variant, "a", signature(variant)) is None


def test_metrics_diversity_and_coverage():
    metrics = Metrics()
    for i in range(4):
        kept = item(question=f"Question {i} about topic {i * 7}?")
        kept.chunk = i % 2
        assess(kept, QualitySettings(), SCORER)
        metrics.add(kept)
    summary = metrics.summary(documents=2, chunks=4)
    assert 0 < summary["diversity_score"] <= 1
    assert summary["coverage_analysis"]["documents_with_records"] == 1
    assert summary["coverage_analysis"]["chunk_coverage"] == 0.5
    repeated = Metrics()
    for _ in range(4):
        repeated.add(item())
    assert repeated.diversity() < summary["diversity_score"]
