"""`lfm dataset from-feedback` and `lfm dataset convert` for preference records, on feedback
logs written by hand in the server's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lfm.dataset import DatasetError
from lfm.dataset.convert import convert_file
from lfm.dataset.feedback import from_feedback

CHAT = [{"role": "user", "content": "How do I reset my password?"}]


def log(tmp_path: Path, *lines: dict) -> Path:
    path = tmp_path / "feedback.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def line(answer: str, rating: float | None = None, preferred: str | None = None, prompt=CHAT):
    return {"id": "x", "prompt": prompt, "answer": answer, "rating": rating,
            "preferred": preferred, "model": "bot"}  # fmt: skip


def test_good_and_bad_answers_to_one_prompt_pair_up(tmp_path: Path) -> None:
    source = log(tmp_path, line("Click 'Forgot password'.", 1.0), line("No idea.", 0.0),
                 line("Ask IT.", 0.6), line("Meh.", 0.4))  # fmt: skip
    out = tmp_path / "pairs.jsonl"
    done = from_feedback(source, out, "preference", good=0.7, bad=0.3)
    assert read(out) == [{
        "prompt": CHAT,
        "chosen": [{"role": "assistant", "content": "Click 'Forgot password'."}],
        "rejected": [{"role": "assistant", "content": "No idea."}],
    }]  # fmt: skip
    assert done.records == 1 and done.unrated == 2  # 0.6 and 0.4: neither good nor bad


def test_kto_and_sft_targets(tmp_path: Path) -> None:
    source = log(tmp_path, line("Fine answer", 1.0, prompt="Q1"), line("Bad answer", 0.0,
                 preferred="Better answer", prompt="Q2"))  # fmt: skip
    kto = tmp_path / "kto.jsonl"
    from_feedback(source, kto, "unpaired_preference")
    assert read(kto) == [
        {"prompt": "Q1", "completion": "Fine answer", "label": True},
        {"prompt": "Q2", "completion": "Better answer", "label": True},
        {"prompt": "Q2", "completion": "Bad answer", "label": False},
    ]
    sft = tmp_path / "sft.jsonl"
    from_feedback(source, sft, "alpaca")
    assert read(sft) == [
        {"instruction": "Q1", "input": "", "output": "Fine answer"},
        {"instruction": "Q2", "input": "", "output": "Better answer"},
    ]
    chat = tmp_path / "chat.jsonl"
    from_feedback(log(tmp_path, line("Yes.", 1.0)), chat, "chatml", force=True)
    assert read(chat)[0]["messages"][-1] == {"role": "assistant", "content": "Yes."}


def test_personal_data_is_redacted_dropped_or_kept(tmp_path: Path) -> None:
    prompt = "Call me at +1 415 555 0100 or write ann@example.com"
    source = log(tmp_path, line("ok", 0.0, preferred="Sure", prompt=prompt))
    redacted = tmp_path / "r.jsonl"
    done = from_feedback(source, redacted, "preference")
    assert done.pii_redacted == 1 and "ann@example.com" not in redacted.read_text()
    with pytest.raises(DatasetError, match="1 dropped for personal data"):
        from_feedback(source, tmp_path / "d.jsonl", "preference", pii="drop")
    assert not (tmp_path / "d.jsonl").exists()
    kept = tmp_path / "k.jsonl"
    from_feedback(source, kept, "preference", pii="keep")
    assert read(kept)[0]["prompt"] == prompt


def test_bad_logs_are_clear_errors_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(line("a", 1.0)) + "\n{not json\n")
    with pytest.raises(DatasetError, match="bad.jsonl:2: not a JSON object"):
        from_feedback(bad, out, "preference")
    wrong = log(tmp_path, line("a", 3.0))
    with pytest.raises(DatasetError, match="rating must be a number from 0 to 1"):
        from_feedback(wrong, out, "preference")
    bare = log(tmp_path, {"id": "x", "rating": 1.0})
    with pytest.raises(DatasetError, match="start lfm serve with --feedback-text"):
        from_feedback(bare, out, "preference")
    only_good = log(tmp_path, line("a", 1.0))
    with pytest.raises(DatasetError, match="no preference record could be made"):
        from_feedback(only_good, out, "preference")
    assert not out.exists()
    out.write_text("mine")
    with pytest.raises(DatasetError, match="pass --force"):
        from_feedback(log(tmp_path, line("a", 0.0, preferred="b")), out, "preference")
    assert out.read_text() == "mine"
    with pytest.raises(DatasetError, match="need 0 <= bad <= good <= 1"):
        from_feedback(only_good, tmp_path / "x.jsonl", "preference", good=0.2, bad=0.8)


def test_convert_pairs_to_kto_and_sft_but_not_back(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Q", "chosen": "good", "rejected": "bad"}) + "\n")
    kto = tmp_path / "kto.jsonl"
    assert convert_file(pairs, kto, "unpaired_preference").written == 2
    assert [r["label"] for r in read(kto)] == [True, False]
    sft = tmp_path / "sft.jsonl"
    convert_file(pairs, sft, "alpaca")
    assert read(sft) == [{"instruction": "Q", "input": "", "output": "good"}]
    sharegpt = tmp_path / "sharegpt.jsonl"
    convert_file(pairs, sharegpt, "sharegpt")
    assert read(sharegpt)[0]["conversations"][1] == {"from": "gpt", "value": "good"}
    with pytest.raises(DatasetError, match="unpaired records cannot be paired"):
        convert_file(kto, tmp_path / "back.jsonl", "preference")
    alpaca = tmp_path / "a.jsonl"
    alpaca.write_text(json.dumps({"instruction": "Q", "output": "A"}) + "\n")
    with pytest.raises(DatasetError, match="no rejected answer"):
        convert_file(alpaca, tmp_path / "p.jsonl", "preference")


def test_convert_drops_exact_duplicates_and_says_how_many(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "Q", "chosen": "good", "rejected": "bad"},
        {"prompt": "Q", "chosen": "good", "rejected": "bad"},  # the same pair again
        {"prompt": "Q", "chosen": "good", "rejected": "worse"},
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kto = tmp_path / "kto.jsonl"
    # Unpaired: "good" labelled true three times, once kept; "bad" and "worse" once each.
    done = convert_file(pairs, kto, "unpaired_preference")
    assert (done.written, done.duplicates) == (3, 3)
    assert sorted(r["completion"] for r in read(kto)) == ["bad", "good", "worse"]
    from click.testing import CliRunner
    from lfm.cli import lfm

    sft = tmp_path / "sft.json"  # a JSON array: duplicates dropped there too
    shown = CliRunner().invoke(
        lfm, ["dataset", "convert", str(pairs), "--to", "alpaca", "-o", str(sft)]
    )
    assert shown.exit_code == 0, shown.output
    assert "wrote 1 alpaca records" in shown.output and "(2 duplicate(s) dropped" in shown.output
    assert json.loads(sft.read_text()) == [{"instruction": "Q", "input": "", "output": "good"}]
    # Repeats meant to weigh more stay when asked.
    kept = convert_file(pairs, tmp_path / "all.jsonl", "unpaired_preference", keep_duplicates=True)
    assert (kept.written, kept.duplicates) == (6, 0)
