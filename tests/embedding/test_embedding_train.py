"""A compiled embedding bundle trains, evaluates and resumes on a tiny local encoder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import pair_records
from lfm.compiler.pipeline import compile_config
from lfm.compiler.write import write_bundle

CONFIG = """\
model_config:
  name: tiny_retriever
  base_model: ./encoder
  task: embedding
  embedding: {max_seq_length: 32, hard_negative_margin: 0}
  dataset:
    source: {type: local, path: ./pairs.jsonl}
    validation: {split_ratio: 0.4}
  fine_tuning:
    training: {epochs: 1, batch_size: 4, learning_rate: 1.0e-3, logging_steps: 1, save_steps: 2}
  evaluation:
    compare_with_base: true
    run_after_training: true
    gates:
      min_scores: {recall@10: 1.0}
"""
# Ten passages in all: recall@10 is 1.0 for any model, base and tuned, so this gate can never be
# met (and must fail the evaluation).
FAILING_GATE = "      min_improvement: {recall@10: 0.01}\n"


def _run(script, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow  # four processes, each importing sentence-transformers: about 40 s
def test_train_evaluate_and_resume(tmp_path, tiny_encoder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_encoder, tmp_path / "encoder")
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pair_records()))
    (tmp_path / "config.yaml").write_text(CONFIG)
    compilation = compile_config("config.yaml", "bundle")
    write_bundle(compilation.files, tmp_path / "bundle")

    first = _run(tmp_path / "bundle" / "train.py", tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "bundle" / "output"
    assert (out / "modules.json").is_file() and (out / "model.safetensors").is_file()
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps and all("loss" in s for s in steps)
    results = json.loads((out / "eval" / "eval_results.json").read_text())["evaluation_results"]
    scores = results["scores"]
    assert set(scores) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"}
    assert all(s["base"] is not None for s in scores.values())
    assert results["passed"] and results["gates"][0]["gate"] == "min_scores.recall@10"
    assert scores["recall@10"]["value"] == scores["recall@10"]["base"] == 1.0
    assert {
        p["document"]
        for p in map(json.loads, (out / "heldout_pairs.jsonl").read_text().splitlines())
    }

    again = _run(tmp_path / "bundle" / "train.py", tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming training from checkpoint" in again.stderr

    # The same trained model under a gate it cannot meet: evaluate.py (what train.py's
    # run_after_training runs, and fails with) exits 1 and records the failed gate.
    (tmp_path / "failing.yaml").write_text(
        CONFIG.replace("min_scores: {recall@10: 1.0}\n", FAILING_GATE.lstrip())
    )
    write_bundle(compile_config("failing.yaml", "failing").files, tmp_path / "failing")
    shutil.copytree(out, tmp_path / "failing" / "output")
    failed = _run(tmp_path / "failing" / "evaluate.py", tmp_path)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "error:" in failed.stderr and "recall@10" in failed.stderr
    results = json.loads(
        (tmp_path / "failing" / "output" / "eval" / "eval_results.json").read_text()
    )
    assert not results["evaluation_results"]["passed"]


def test_the_registry_records_an_embedding_model_as_its_own_type(tmp_path, tiny_encoder):
    from lfm.registry.lineage import normalize_type, read_lineage

    assert read_lineage(tiny_encoder, None)["type"] == "embedding"
    assert normalize_type("embeddings") == "embedding"


def test_the_runtime_trains_mines_and_scores_in_process(tmp_path, tiny_encoder):
    """What train.py and evaluate.py call, in one process (the fast default-run check)."""
    from lfm.runtime import embedding, embedding_train, training
    from lfm.runtime.evaluation import gates, retrieval
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses

    pairs = [embedding.pair_from_record(r, i) for i, r in enumerate(pair_records())]
    train, test = embedding.split_by_document(pairs, 0.4, seed=1)
    passages = {embedding.passage_id(p.passage): p.passage for p in pairs}
    data = embedding.RetrievalData(tuple(train), tuple(test), passages)
    model = embedding_train.load_encoder(str(tiny_encoder), base_dir=tmp_path, max_seq_length=32)
    ir = retrieval.evaluator(data, batch_size=8)
    before = retrieval.scores(model, ir)
    rows = embedding_train.training_dataset(
        model, data.train, negatives=1, margin=0.0, batch_size=8
    )
    assert rows.column_names == ["anchor", "positive", "negative_1"]
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=1, per_device_train_batch_size=4,
        learning_rate=1e-3, save_strategy="no", report_to=[], disable_tqdm=True,
        batch_sampler="no_duplicates", use_cpu=True,
    )  # fmt: skip
    trainer = embedding_train.Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        loss=losses.MultipleNegativesRankingLoss(model),
        callbacks=[training.MetricsCallback(tmp_path / "out")],
    )
    trainer.train()
    embedding_train.save_outputs(trainer, tmp_path / "out")
    after = retrieval.scores(model, ir)
    assert set(after) == set(before) == set(retrieval.SCORE_KEYS)
    # Tokens are counted from the features sentence-transformers passes to the model.
    steps = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").open()]
    assert steps and all(step["tokens"] > 0 for step in steps)
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["num_input_tokens_seen"] > 0 and summary["tokens_per_second"] > 0
    passed = retrieval.finish(
        "tiny", after, before, gates.Gates(min_scores={"recall@10": 1.0}),
        model_path="out", base_model="tiny", data=data, output_dir=tmp_path / "eval",
    )  # fmt: skip
    results = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert passed and results["evaluation_results"]["scores"]["mrr@10"]["base"] == before["mrr@10"]
    # recall@10 of ten passages is 1.0 before and after: no improvement, a gate that fails.
    failed = retrieval.finish(
        "tiny", after, before, gates.Gates(min_improvement={"recall@10": 0.01}),
        model_path="out", base_model="tiny", data=data, output_dir=tmp_path / "failed",
    )  # fmt: skip
    results = json.loads((tmp_path / "failed" / "eval_results.json").read_text())
    assert not failed and not results["evaluation_results"]["passed"]


def _data():
    from lfm.runtime import embedding

    pairs = [embedding.pair_from_record(r, i) for i, r in enumerate(pair_records())]
    train, test = embedding.split_by_document(pairs, 0.4, seed=1)
    passages = {embedding.passage_id(p.passage): p.passage for p in pairs}
    return embedding.RetrievalData(tuple(train), tuple(test), passages)


def test_a_model_saved_with_dot_similarity_is_scored_by_cosine_like_the_others(
    tmp_path, tiny_encoder
):
    """The evaluator would name its keys after the model's own similarity ("dot_...")."""
    from lfm.runtime import embedding_train
    from lfm.runtime.evaluation import retrieval

    cosine = embedding_train.load_encoder(str(tiny_encoder), base_dir=tmp_path, max_seq_length=32)
    cosine.similarity_fn_name = "dot"
    cosine.save(str(tmp_path / "dot"))
    dot = embedding_train.load_encoder(str(tmp_path / "dot"), base_dir=tmp_path, max_seq_length=32)
    assert dot.similarity_fn_name == "dot"
    ir = retrieval.evaluator(_data(), batch_size=8)
    found = retrieval.scores(dot, ir)
    again = retrieval.scores(
        embedding_train.load_encoder(str(tiny_encoder), base_dir=tmp_path, max_seq_length=32), ir
    )
    assert set(found) == set(retrieval.SCORE_KEYS) and found == pytest.approx(again)


def test_the_evaluator_comes_from_sentence_transformers_current_path(tmp_path):
    """Not the deprecated `sentence_transformers.evaluation` (it warns on import)."""
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    from conftest import pair_records\n"
        "    from lfm.runtime import embedding\n"
        "    from lfm.runtime.evaluation import retrieval\n"
        "    pairs = [embedding.pair_from_record(r, i) for i, r in enumerate(pair_records())]\n"
        "    train, test = embedding.split_by_document(pairs, 0.4, seed=1)\n"
        "    passages = {embedding.passage_id(p.passage): p.passage for p in pairs}\n"
        "    data = embedding.RetrievalData(tuple(train), tuple(test), passages)\n"
        "    retrieval.evaluator(data, batch_size=8)\n"
        "print([str(w.message) for w in caught if 'sentence_transformers.' in str(w.message)])\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=here, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_a_cached_loss_counts_each_trained_token_once(tiny_encoder, tmp_path):
    """GradCache losses embed every mini-batch twice (without gradients, then with): the
    counter counts the pass that trains, so tokens match the batch's own."""
    import torch
    from lfm.runtime import embedding_train
    from lfm.runtime.metrics import TokenCounter

    model = embedding_train.load_encoder(str(tiny_encoder), base_dir=tmp_path, max_seq_length=32)
    model.train()
    features = model.preprocess(["lists hold items", "keys"])
    counter = TokenCounter()
    counter.attach(model)
    with torch.no_grad():
        model(features)
    model(features)
    counter.detach()
    assert counter.real == int(features["attention_mask"].sum())
    assert counter.total == int(features["input_ids"].numel())


def test_the_note_on_pairs_without_a_hard_negative_says_the_pairs_were_left_out(
    tiny_encoder, tmp_path, capsys
):
    """mine_hard_negatives ("n-tuple") drops a pair whose question got no negative: the pair
    is not trained on at all, and the note says so (not that only its negative went)."""
    from lfm.runtime import embedding, embedding_train

    pairs = tuple(embedding.pair_from_record(r, i) for i, r in enumerate(pair_records()))
    model = embedding_train.load_encoder(str(tiny_encoder), base_dir=tmp_path, max_seq_length=32)
    # The tiny random encoder scores every passage alike: a 0.3% margin already leaves some
    # questions without a passage far enough below their own.
    rows = embedding_train.training_dataset(model, pairs, negatives=1, margin=0.003, batch_size=8)
    dropped = len(pairs) - len(rows)
    assert 0 < dropped < len(pairs)
    said = capsys.readouterr()
    said = " ".join((said.out + said.err).split())
    assert (
        f"{dropped} of {len(pairs)} pairs were left out of training altogether (question and "
        "passage, not only their negatives)" in said
    )
    assert "found no other passage scoring at least 0.3% below the pair's own" in said
    # What is left is whole pairs, each with its negative: the others are not trained on.
    assert rows.column_names == ["anchor", "positive", "negative_1"]
    assert all(row["negative_1"] != row["positive"] for row in rows)


def test_lfm_evaluate_scores_an_embedding_model_on_a_pairs_file(tmp_path, tiny_encoder):
    """`lfm evaluate --model OUTPUT --dataset heldout_pairs.jsonl` on a sentence-transformers
    folder: retrieval scores and gates (the bundle's evaluate.py's), not a generative error."""
    from click.testing import CliRunner
    from lfm.cli import lfm

    pairs = tmp_path / "heldout_pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in pair_records()))
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(tiny_encoder), "--dataset", str(pairs), "-o", str(out)]
    result = CliRunner().invoke(lfm, [*args, "--compare", str(tiny_encoder), "--min-score",
                                      "recall@10=1.0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads((out / "eval_results.json").read_text())["evaluation_results"]["scores"]
    assert set(scores) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"}
    assert scores["recall@10"]["base"] == scores["recall@10"]["value"] == 1.0  # ten passages

    failed = CliRunner().invoke(lfm, [*args, "--min-score", "mrr@10=1.01"])
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    generative = CliRunner().invoke(lfm, [*args, "--metrics", "rouge"])
    assert generative.exit_code == 2
    assert "is an embedding model (sentence-transformers): --metrics is for generative models" in (
        " ".join(generative.output.split())
    )
    (tmp_path / "chat.jsonl").write_text('{"instruction": "hi", "output": "hello"}\n')
    no_passage = CliRunner().invoke(lfm, [*args[:3], "--dataset", str(tmp_path / "chat.jsonl")])
    assert no_passage.exit_code == 1 and "record 1 has no passage" in no_passage.output
