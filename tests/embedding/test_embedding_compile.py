"""task: embedding compiles into a sentence-transformers train.py and evaluate.py; bad input is
one compile error with its position."""

from __future__ import annotations

import json
import py_compile

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.pipeline import analyze, compile_config

CONFIG = """\
model_config:
  name: retriever
  base_model: ./encoder
  task: embedding
  dataset:
    source: {type: local, path: ./pairs.jsonl}
    validation: {split_ratio: 0.25}
  fine_tuning:
    training: {epochs: 1, batch_size: 4}
  evaluation:
    compare_with_base: true
    gates:
      min_improvement: {recall@5: 0.0, mrr@10: 0.0}
"""


def _compile(write_config, text=CONFIG):
    path = write_config(text)
    return compile_config(path, path.parent / "bundle")


def test_the_bundle_calls_sentence_transformers_by_its_own_names(write_config):
    files = _compile(write_config).files
    train = files["train.py"]
    assert "SentenceTransformerTrainingArguments(" in train
    assert "loss = losses.MultipleNegativesRankingLoss(model)" in train
    assert 'batch_sampler="no_duplicates"' in train
    assert "negatives=1," in train and "margin=0.05," in train
    assert 'eval_strategy="no"' in train and "use_liger_kernel" not in train
    assert "resume_from_checkpoint=training.resume_point(OUTPUT_DIR, BUNDLE_DIR)" in train
    assert "training.MetricsCallback(OUTPUT_DIR)" in train
    assert "retrieval.evaluator(pairs" in files["evaluate.py"]
    assert 'min_improvement={"recall@5": 0.0, "mrr@10": 0.0},' in files["evaluate.py"]
    assert any(
        line.startswith("sentence-transformers==")
        for line in files["requirements.txt"].splitlines()
    )
    assert "peft" not in files["train.py"]


def test_the_scripts_are_valid_python(write_config, tmp_path):
    files = _compile(write_config).files
    for name in ("train.py", "evaluate.py"):
        (tmp_path / name).write_text(files[name], encoding="utf-8")
        py_compile.compile(str(tmp_path / name), doraise=True)


def test_the_same_config_gives_the_same_bytes(write_config):
    assert _compile(write_config).files == _compile(write_config).files


def test_explain_shows_why_the_method_and_metrics_are_what_they_are(write_config):
    decisions = {d.path: d for d in analyze(write_config(CONFIG)).resolved.decisions}
    method = decisions["model_config.fine_tuning.method"]
    assert (method.value, method.rule) == ("full", "embedding_task")
    assert decisions["model_config.evaluation.metrics"].value[:2] == ["recall@1", "recall@5"]
    assert decisions["model_config.embedding.loss"].value == "MultipleNegativesRankingLoss"
    lock = json.loads(_compile(write_config).files["lfm.lock.json"])
    assert lock["model_config"]["task"] == "embedding"


def test_a_generation_config_records_no_embedding_settings(write_config):
    resolved = analyze(write_config("model_config:\n  base_model: m\n")).resolved
    assert "embedding" not in resolved.config
    assert not [d for d in resolved.decisions if d.path.startswith("model_config.embedding")]
    assert resolved.config["task"] == "generation"


def _error(write_config, text):
    with pytest.raises(CompileError) as caught:
        analyze(write_config(text))
    return [d.format() for d in caught.value.diagnostics if d.level == "error"]


def test_a_generative_local_base_model_is_a_compile_error(write_config, tmp_path):
    (tmp_path / "encoder").mkdir()
    (tmp_path / "encoder" / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    [found] = _error(write_config, CONFIG)
    assert found.startswith("config.yaml:3:15: error: task: embedding needs an encoder")
    assert "LlamaForCausalLM, a generative model" in found


def test_a_generative_hub_model_is_a_compile_error(write_config):
    [found] = _error(write_config, CONFIG.replace("./encoder", "meta-llama/Llama-2-7b-hf"))
    assert "a llama model, a generative model" in found
    analyze(write_config(CONFIG.replace("./encoder", "Qwen/Qwen3-Embedding-0.6B")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  task: embedding\n", "  task: embedding\n  fine_tuning:\n    method: lora\n"), None),
        (("compare_with_base: true", "compare_with_base: true\n    metrics: [rouge]"), "evaluation.metrics scores generated text"),
        (("split_ratio: 0.25", "split_ratio: 0"), "needs held-out documents, but split_ratio is 0 (an empty split)"),
        (("task: embedding", "task: embedding\n  embedding: {loss: TripletLoss, hard_negatives: 0}"), "TripletLoss needs a negative per pair"),
        (("recall@5: 0.0", "recall@50: 0.0"), "no score named 'recall@50' is measured"),
        (("task: embedding", "task: embedding\n  embedding: {loss: TripletLoss, hard_negatives: 2}"), "TripletLoss takes one negative per pair (anchor, positive, negative), but hard_negatives is 2"),
        (("task: embedding", "task: embedding\n  sweep:\n    parameters:\n      learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-3}"), "sweeps apply to task: generation for now"),
    ],
)  # fmt: skip
def test_bad_embedding_configs_are_one_clear_error(write_config, change, message):
    text = CONFIG.replace(*change)
    if message is None:  # a second fine_tuning key: write the method into the existing one
        text = CONFIG.replace("  fine_tuning:\n", "  fine_tuning:\n    method: lora\n")
        message = "task: embedding trains every weight of the encoder (method: full), got 'lora'"
    found = _error(write_config, text)
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_a_deployment_target_serves_the_encoder_with_vllms_pooling_runner(write_config, target):
    text = CONFIG.replace(
        "task: embedding", f"task: embedding\n  deployment:\n    target: {target}\n"
        "    serving: {port: 8080}"
    )  # fmt: skip
    files = _compile(write_config, text).files
    assert "Dockerfile" in files and "Dockerfile.serve" in files
    cmd = '"/models/retriever", "--host", "0.0.0.0", "--port", "8080", "--runner", "pooling"'
    assert cmd in files["Dockerfile.serve"] and "--max-model-len" not in files["Dockerfile.serve"]
    assert ("k8s/deployment.yaml" in files) == (target == "kubernetes")
    lock = json.loads(files["lfm.lock.json"])
    assert "derived.serving_runner" in json.dumps(lock)
    # A generation bundle's vLLM picks its runner itself: no --runner there.
    plain = "model_config:\n  base_model: m\n  deployment: {target: docker}\n"
    assert "--runner" not in compile_config(write_config(plain), "b").files["Dockerfile.serve"]


def test_a_training_job_without_vllm_serving_still_compiles(write_config):
    text = CONFIG.replace(
        "task: embedding", "task: embedding\n  distributed: {launcher: kubernetes}"
    )
    files = _compile(write_config, text).files
    assert "Dockerfile" in files and "k8s/job.yaml" in files
    assert "Dockerfile.serve" not in files and "k8s/deployment.yaml" not in files


def test_a_sentence_transformers_folder_is_an_encoder_whatever_its_architecture(
    write_config, tmp_path
):
    """Qwen3-Embedding: a Qwen3 decoder in config.json, saved by sentence-transformers."""
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"})
    )
    for marker in ("modules.json", "config_sentence_transformers.json"):
        (folder / marker).write_text("{}" if marker.startswith("config") else "[]")
        analyze(write_config(CONFIG))
        (folder / marker).unlink()
    assert "Qwen3ForCausalLM" in _error(write_config, CONFIG)[0]


def test_the_deprecated_symmetric_loss_is_emitted_as_its_replacement(write_config):
    text = CONFIG.replace(
        "task: embedding",
        "task: embedding\n  embedding: {loss: MultipleNegativesSymmetricRankingLoss}",
    )
    train = _compile(write_config, text).files["train.py"]
    assert "MultipleNegativesSymmetricRankingLoss(" not in train
    assert "loss = losses.MultipleNegativesRankingLoss(\n        model,\n" in train
    assert 'directions=("query_to_doc", "doc_to_query"),' in train
    assert 'partition_mode="per_direction",' in train


def test_the_serving_image_leaves_training_pairs_out(write_config):
    """Dockerfile.serve copies the output folder: the pairs files train.py writes stay out."""
    text = "model_config:\n  base_model: m\n  deployment: {target: docker}\n"
    ignore = compile_config(write_config(text), "bundle").files["Dockerfile.serve.dockerignore"]
    assert "**/*_pairs.jsonl" in ignore.splitlines()
