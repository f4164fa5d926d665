"""`lfm dataset from-feedback`: what users said of a server's answers, as training records.

The input is the JSON Lines feedback log `lfm serve --feedback-text` writes (POST
/v1/feedback): per line an answer's `prompt` (chat messages or a completion's text), its
`answer`, and the user's `rating` (0 bad to 1 good), `preferred` answer, or both. Lines
without the texts (a server run without --feedback-text) cannot become records and are counted.

Targets:

- ``preference``: pairs. A preferred answer is chosen over the answer it replaces; and for one
  prompt, each well-rated answer over each badly rated one (at most MAX_PAIRS_PER_PROMPT).
- ``unpaired_preference`` (KTO): each rated answer, good (rating >= --good) or bad
  (< --bad); preferred answers are good ones.
- ``alpaca``, ``chatml``: supervised records of the good answers and the preferred ones.

Personal data (e-mail addresses, phone and card numbers, IP addresses...) is redacted by
default, as in `lfm dataset create`; ``drop`` leaves out any record that holds some and
``keep`` keeps the text as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DatasetError
from .formats import to_record
from .limits import MAX_JSONL_LINE_BYTES
from .publish import write_chunks_atomic
from .quality.pii import redact

TARGETS = ("preference", "unpaired_preference", "alpaca", "chatml")
PII_MODES = ("redact", "drop", "keep")
MAX_PAIRS_PER_PROMPT = 4  # one popular prompt must not fill the dataset with its pairs


@dataclass
class Answer:
    prompt: Any  # list of {"role", "content"} messages, or text
    answer: str
    rating: float | None
    preferred: str | None


@dataclass
class Conversion:
    lines: int = 0
    without_text: int = 0
    records: int = 0
    pii_redacted: int = 0
    pii_dropped: int = 0
    duplicates: int = 0
    unrated: int = 0  # ratings between --bad and --good: neither good nor bad
    target: str = ""
    kinds: dict[str, int] = field(default_factory=dict)


def from_feedback(
    source: Path,
    output: Path,
    target: str,
    *,
    good: float = 0.5,
    bad: float = 0.5,
    pii: str = "redact",
    force: bool = False,
) -> Conversion:
    """Write ``source``'s feedback to ``output`` as ``target`` records (JSON Lines), atomically;
    nothing is written on an error, or when no record can be made."""
    if target not in TARGETS:
        raise DatasetError(f"--to {target!r}: use one of {', '.join(TARGETS)}")
    if pii not in PII_MODES:
        raise DatasetError(f"--pii {pii!r}: use one of {', '.join(PII_MODES)}")
    if not 0 <= bad <= good <= 1:
        raise DatasetError(f"--bad {bad} and --good {good}: need 0 <= bad <= good <= 1")
    if output.exists() and not force:
        raise DatasetError(f"{output} exists; pass --force to replace it")
    if output.resolve() == source.resolve():
        raise DatasetError("write the records to a new path, not over the feedback log")
    report = Conversion(target=target)
    answers = list(_answers(source, report))
    records = _records(answers, target, good, bad, report)
    seen: set[str] = set()
    lines = []
    for record in records:
        cleaned = _personal_data(record, pii, report)
        if cleaned is None:
            continue
        text = json.dumps(cleaned, ensure_ascii=False, sort_keys=True)
        if text in seen:
            report.duplicates += 1
            continue
        seen.add(text)
        lines.append(text + "\n")
    if not lines:
        raise DatasetError(_nothing_made(report, source))
    write_chunks_atomic(output, lines)
    report.records = len(lines)
    return report


def _answers(source: Path, report: Conversion) -> Iterator[Answer]:
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise DatasetError(f"{source}: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if len(raw) > MAX_JSONL_LINE_BYTES:
                raise DatasetError(
                    f"{source}:{number}: line longer than {MAX_JSONL_LINE_BYTES} bytes"
                )
            if not raw.strip():
                continue
            report.lines += 1
            try:
                line = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                raise DatasetError(f"{source}:{number}: not a JSON object ({exc})") from None
            if not isinstance(line, dict):
                raise DatasetError(f"{source}:{number}: not a JSON object")
            found = _answer(line, source, number)
            if found is None:
                report.without_text += 1
            else:
                yield found


def _answer(line: dict[str, Any], source: Path, number: int) -> Answer | None:
    prompt, answer = line.get("prompt"), line.get("answer")
    if prompt is None or answer is None:
        return None
    where = f"{source}:{number}"
    if not (isinstance(prompt, str) or _is_messages(prompt)):
        raise DatasetError(f"{where}: prompt must be text or a list of {{role, content}} messages")
    if not isinstance(answer, str):
        raise DatasetError(f"{where}: answer must be text")
    rating, preferred = line.get("rating"), line.get("preferred")
    if rating is not None and (
        isinstance(rating, bool) or not isinstance(rating, int | float) or not 0 <= rating <= 1
    ):
        raise DatasetError(f"{where}: rating must be a number from 0 to 1, got {rating!r}")
    if preferred is not None and not isinstance(preferred, str):
        raise DatasetError(f"{where}: preferred must be text")
    return Answer(prompt, answer, None if rating is None else float(rating), preferred or None)


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in value
        )
    )


def _records(
    answers: list[Answer], target: str, good: float, bad: float, report: Conversion
) -> Iterator[dict[str, Any]]:
    def is_good(a: Answer) -> bool:
        return a.rating is not None and a.rating >= good

    def is_bad(a: Answer) -> bool:
        return a.rating is not None and a.rating < bad

    report.unrated = sum(
        1 for a in answers if a.rating is not None and not is_good(a) and not is_bad(a)
    )
    if target == "preference":
        for a in answers:
            if a.preferred and a.preferred.strip() != a.answer.strip():
                yield _pair(a.prompt, a.preferred, a.answer)
        by_prompt: dict[str, list[Answer]] = {}
        for a in answers:
            by_prompt.setdefault(json.dumps(a.prompt, sort_keys=True), []).append(a)
        for group in by_prompt.values():
            pairs = [
                (winner, loser)
                for winner in group
                if is_good(winner)
                for loser in group
                if is_bad(loser) and winner.answer.strip() != loser.answer.strip()
            ]
            for winner, loser in pairs[:MAX_PAIRS_PER_PROMPT]:
                yield _pair(winner.prompt, winner.answer, loser.answer)
    elif target == "unpaired_preference":
        for a in answers:
            if a.preferred:
                yield {
                    "prompt": a.prompt,
                    "completion": _turn(a.prompt, a.preferred),
                    "label": True,
                }
            if is_good(a) or is_bad(a):
                yield {
                    "prompt": a.prompt,
                    "completion": _turn(a.prompt, a.answer),
                    "label": is_good(a),
                }
    else:
        for a in answers:
            for text in ([a.preferred] if a.preferred else []) + ([a.answer] if is_good(a) else []):
                yield _supervised(a.prompt, text, target)


def _pair(prompt: Any, chosen: str, rejected: str) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": _turn(prompt, chosen), "rejected": _turn(prompt, rejected)}


def _turn(prompt: Any, text: str) -> Any:
    """A completion in the prompt's form: an assistant message after chat messages, else text."""
    return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text


def _supervised(prompt: Any, text: str, target: str) -> dict[str, Any]:
    """A prompt and its good answer as an SFT record of ``target`` (alpaca, chatml, messages,
    sharegpt or completion), spelled as `lfm dataset convert` spells each."""
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    return to_record([*messages, {"role": "assistant", "content": text}], target)


def _personal_data(record: dict[str, Any], mode: str, report: Conversion) -> dict[str, Any] | None:
    if mode == "keep":
        return record
    found: dict[str, int] = {}

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            text, kinds = redact(value)
            for kind, count in kinds.items():
                found[kind] = found.get(kind, 0) + count
            return text
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) if k != "role" else v for k, v in value.items()}
        return value

    cleaned = clean(record)
    if not found:
        return record
    for kind, count in found.items():
        report.kinds[kind] = report.kinds.get(kind, 0) + count
    if mode == "drop":
        report.pii_dropped += 1
        return None
    report.pii_redacted += 1
    return cleaned


def _nothing_made(report: Conversion, source: Path) -> str:
    if report.lines == 0:
        return f"{source} holds no feedback"
    if report.without_text == report.lines:
        return (
            f"none of the {report.lines} feedback lines in {source} holds its prompt and answer: "
            "start lfm serve with --feedback-text to record them"
        )
    need = {
        "preference": "a preferred answer, or a good and a bad rating of one prompt",
        "unpaired_preference": "a rating at or above --good or below --bad, or a preferred answer",
    }.get(report.target, "a rating at or above --good, or a preferred answer")
    return f"no {report.target} record could be made from {source}: each needs {need}" + (
        f" ({report.pii_dropped} dropped for personal data)" if report.pii_dropped else ""
    )


# ---- lfm dataset convert, for preference records ------------------------------------------------

PREFERENCE_FORMATS = ("preference", "unpaired_preference")


def convert_preference(
    records: Iterator[dict[str, Any]], source_fmt: str, target: str
) -> Iterator[dict[str, Any]]:
    """Preference records in another form: pairs as KTO's good and bad completions, or either
    kind as supervised records of their good completions. SFT records cannot become pairs:
    they hold no rejected answer."""
    if source_fmt not in PREFERENCE_FORMATS:
        raise DatasetError(
            f"--to {target}: {source_fmt} records have no rejected answer to make preference "
            "data of; collect feedback (lfm dataset from-feedback) or write the pairs"
        )
    if source_fmt == target:
        raise DatasetError(f"the records are {target} already")
    if source_fmt == "unpaired_preference" and target == "preference":
        raise DatasetError(
            "unpaired records cannot be paired: nothing says which good and bad completions "
            "answer the same prompt alike; train them with objective kto"
        )
    for index, record in enumerate(records):
        prompt = record.get("prompt")
        if not (isinstance(prompt, str) or _is_messages(prompt)):
            raise DatasetError(f"record {index + 1}: prompt must be text or a list of messages")
        if source_fmt == "preference":
            chosen, rejected = record.get("chosen"), record.get("rejected")
            if chosen is None or rejected is None:
                raise DatasetError(f"record {index + 1}: a pair needs 'chosen' and 'rejected'")
            if target == "unpaired_preference":
                yield {"prompt": prompt, "completion": chosen, "label": True}
                yield {"prompt": prompt, "completion": rejected, "label": False}
            else:
                yield _supervised(prompt, _text_of(chosen, index), target)
        else:
            label = record.get("label")
            if not isinstance(label, bool):
                raise DatasetError(f"record {index + 1}: 'label' must be true or false")
            if label:
                yield _supervised(prompt, _text_of(record.get("completion"), index), target)


def _text_of(completion: Any, index: int) -> str:
    if isinstance(completion, str):
        return completion
    if _is_messages(completion):
        return "\n".join(m["content"] for m in completion if m["role"] == "assistant")
    raise DatasetError(f"record {index + 1}: a completion must be text or assistant messages")


def detect_preference(record: dict[str, Any]) -> str | None:
    if record.get("chosen") is not None and record.get("rejected") is not None:
        return "preference"
    if record.get("completion") is not None and record.get("label") is not None:
        return "unpaired_preference"
    return None
