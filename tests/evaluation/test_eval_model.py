"""Perplexity and generation metrics over the tiny model, base and trained adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("peft")

from lfm.runtime.errors import RuntimeConfigError  # noqa: E402
from lfm.runtime.evaluation import evalset, model_eval, scoring  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(eval_tiny_model):
    from lfm.runtime.modeling import load_tokenizer

    return load_tokenizer(str(eval_tiny_model))


def test_holdout_set_is_the_split_training_held_out(quickstart_spec, tokenizer):
    from lfm.runtime import data

    _, held = data.load_sft_dataset(quickstart_spec, tokenizer)
    ours = evalset.holdout_set(quickstart_spec, tokenizer)
    assert sorted(tuple(e.input_ids) for e in ours.examples) == sorted(
        tuple(ids) for ids in held["input_ids"]
    )
    assert len(ours.examples) == 5 and ours.split == "holdout"
    assert len(ours.sha256) == 64
    first = ours.examples[0]
    assert first.prompt.endswith("### Response:\n") and first.reference
    records = [json.loads(line) for line in Path(quickstart_spec.path).read_text().splitlines()]
    assert first.reference in {r["output"] for r in records}


def test_perplexity_of_the_tiny_model_falls_after_training(
    eval_tiny_model, trained_adapter, quickstart_spec, tokenizer
):
    holdout = evalset.holdout_set(quickstart_spec, tokenizer)
    base = model_eval.load_for_eval(str(eval_tiny_model))
    tuned = model_eval.load_for_eval(str(trained_adapter))
    assert (base.kind, tuned.kind) == ("base", "adapter")
    before = model_eval.perplexity(base, holdout.examples, batch_size=4)
    after = model_eval.perplexity(tuned, holdout.examples, batch_size=4)
    assert 1 < after < before


def test_perplexity_is_token_weighted(eval_tiny_model, quickstart_spec, tokenizer):
    """One batch or many, the same number: the mean is over tokens, not over batches."""
    holdout = evalset.holdout_set(quickstart_spec, tokenizer)
    base = model_eval.load_for_eval(str(eval_tiny_model))
    one = model_eval.perplexity(base, holdout.examples, batch_size=len(holdout.examples))
    many = model_eval.perplexity(base, holdout.examples, batch_size=1)
    assert one == pytest.approx(many, rel=1e-4)


def test_latency_is_per_answer_not_per_batch(eval_tiny_model, quickstart_spec):
    """Two prompts in one batch: the answer that ends early has the shorter latency."""
    import torch
    from lfm.runtime.modeling import load_tokenizer

    loaded = model_eval.load_for_eval(str(eval_tiny_model))
    loaded.tokenizer = load_tokenizer(str(eval_tiny_model))  # ours: its EOS changes below
    examples = evalset.holdout_set(quickstart_spec, loaded.tokenizer, max_examples=2).examples
    settings = model_eval.GenerationSettings(max_new_tokens=16, batch_size=2)
    loaded.tokenizer.padding_side = "left"
    batch = loaded.tokenizer([e.prompt for e in examples], return_tensors="pt", padding=True)
    with torch.no_grad():
        greedy = loaded.model.generate(**batch, max_new_tokens=16, do_sample=False)
    first, second = (row[batch["input_ids"].shape[1] :].tolist() for row in greedy)
    # Make the first answer's earliest token that the second never produces the EOS token.
    step, token = next((i, t) for i, t in enumerate(first) if t not in second)
    assert step < 8, "the tiny model's answers overlap too much for this test"
    loaded.tokenizer.eos_token = loaded.tokenizer.convert_ids_to_tokens(token)
    result = model_eval.generate(loaded, examples, settings)
    early, late = result.latencies
    assert early < late <= result.seconds
    assert late == pytest.approx(result.seconds, rel=0.05)


def test_generation_metrics_and_latency(trained_adapter, quickstart_spec, tokenizer):
    holdout = evalset.holdout_set(quickstart_spec, tokenizer, max_examples=3)
    tuned = model_eval.load_for_eval(str(trained_adapter))
    settings = model_eval.GenerationSettings(max_new_tokens=8, batch_size=2)
    scores = scoring.score(
        tuned, holdout, ["bleu", "chrf", "rouge", "exact_match", "f1", "latency"], settings
    )
    assert set(scores) == {
        "bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match", "f1",
        "latency_p50_ms", "latency_p95_ms", "tokens_per_second",
    }  # fmt: skip
    assert 0 <= scores["rouge1"] <= 1 and 0 <= scores["bleu"] <= 100
    assert 0 < scores["latency_p50_ms"] <= scores["latency_p95_ms"]
    assert scores["tokens_per_second"] > 0
    # Greedy decoding is deterministic: the same settings give the same answers.
    again = scoring.score(tuned, holdout, ["rouge"], settings)
    assert again["rouge1"] == scores["rouge1"]


def test_rag_accuracy_needs_a_context_field(eval_tiny_model, tokenizer, tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"question": "q?", "answer": "a"}) + "\n")
    qa = evalset.file_set(path, tokenizer)
    base = model_eval.load_for_eval(str(eval_tiny_model))
    with pytest.raises(RuntimeConfigError, match="add a 'context'"):
        scoring.score(base, qa, ["rag_accuracy"], model_eval.GenerationSettings(max_new_tokens=2))


def test_rag_accuracy_shows_the_chunk_and_scores_by_f1(eval_tiny_model, tokenizer, tmp_path):
    path = tmp_path / "rag.jsonl"
    rows = [{"question": "Who?", "context": "The answer is lfm.", "answer": "lfm"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    qa = evalset.file_set(path, tokenizer)
    assert "The answer is lfm." in qa.examples[0].prompt
    assert scoring.rag_accuracy(["lfm it is", "no"], ["lfm", "lfm"]) == 0.5


def test_a_directory_of_several_adapters_names_them(tmp_path):
    for name in ("lora", "ia3"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
    with pytest.raises(RuntimeConfigError, match="several adapters \\(ia3, lora\\)"):
        model_eval.load_for_eval(str(tmp_path))


def test_a_model_that_is_not_there_says_train_first(tmp_path):
    with pytest.raises(RuntimeConfigError, match="does not exist; train first"):
        model_eval.load_for_eval(str(tmp_path / "output"))
