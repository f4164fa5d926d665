"""The engine's text, token by token: characters split over tokens, stop strings split over
characters and tokens, nothing lost or sent twice."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from lfm.serving.engine import Event, Job, Sampling, _Row  # noqa: E402


class ByteTokenizer:
    """One token per UTF-8 byte: a character may take several tokens."""

    def decode(self, ids: list[int], **_: object) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def run(text: str, stop: tuple[str, ...] = (), max_tokens: int = 100) -> tuple[str, str]:
    events: list[Event] = []
    row = _Row(Job([1], None, Sampling(max_tokens, stop=stop), events.append), ByteTokenizer(), {0})
    reason = None
    for token in [*text.encode(), 0]:
        reason = row.step(token)
        if reason:
            break
    return "".join(e.text for e in events), reason or ""


@pytest.mark.parametrize(
    ("text", "stop", "sent", "reason"),
    [
        ("héllo wörld", (), "héllo wörld", "stop"),  # the end-of-sequence token
        ("x答：y", ("答：",), "x", "stop"),  # a stop of multi-byte characters
        ("abcSTOPdef", ("STOP",), "abc", "stop"),
        ("abcSTdef", ("STOP",), "abcSTdef", "stop"),  # a held-back prefix that was not a stop
        # max_tokens ends mid-character: as decoding every token at once gives it.
        ("日本語", (), "日本\ufffd", "length"),
    ],
)
def test_text_is_sent_once_whole_and_cut_at_stops(text, stop, sent, reason):
    max_tokens = 7 if text == "日本語" else 100
    assert run(text, stop, max_tokens) == (sent, reason)
