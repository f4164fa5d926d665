"""`task: embedding`: a sentence-transformers encoder trained on question -> passage pairs.

The rule runs early (before the method rules) because it fixes the method: an embedding model
trains every weight of its encoder (`method: full`). It also refuses what cannot make an
embedding model: a generative base model, generation-only evaluation settings, a loss that
needs negatives when none are mined (or more than it takes), an evaluation with no held-out
documents and a sweep (sweep.py drives generation training only, for now). Its serving image
and manifests run vLLM's embedding server (`--runner pooling`) on the trained encoder.
"""

from __future__ import annotations

import json

from lfm.runtime.inputs import MiB, read_bounded

from ..paths import config_relative, is_local
from ..resolve import ROOT, Context
from .methods import _family_from_config, family_of

# The retrieval scores evaluate.py reports for an embedding model (gates name these).
EMBEDDING_SCORES = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
# Evaluation settings that score generated text: meaningless for an encoder.
GENERATION_ONLY = ("metrics", "benchmarks", "custom_evaluations", "test_set")
# Words in a hub id that mark an embedding model even within a generative family (Qwen3-Embedding).
# Files only a sentence-transformers model folder has.
ST_FILES = ("modules.json", "config_sentence_transformers.json")
_ENCODER_WORDS = ("embed", "sentence", "minilm", "mpnet", "bge", "e5-", "gte-", "retriev")


def embedding_task(ctx: Context) -> None:
    if ctx.get("task") != "embedding":
        _drop_embedding_settings(ctx)
        return
    _method_is_full(ctx)
    _base_model_is_an_encoder(ctx)
    _evaluation_is_retrieval(ctx)
    _loss_fits_negatives(ctx)
    _no_sweep(ctx)
    _serving_embeds(ctx)
    if ctx.get("dataset", "source", "type") in ("documents", "rag_documents"):
        ctx.decide(
            ("dataset", "source", "include_metadata"),
            True,
            "embedding_task",
            "task: embedding keeps each pair's source chunk (the passage) and its document, "
            "for the passages, the hard negatives and the split by document",
        )
    if ctx.user_set("evaluation"):
        ctx.decide(
            ("evaluation", "metrics"),
            list(EMBEDDING_SCORES),
            "embedding_task",
            "task: embedding is scored by sentence-transformers' InformationRetrievalEvaluator: "
            "the held-out documents' questions against every passage",
        )


def _loss_fits_negatives(ctx: Context) -> None:
    if ctx.get("embedding", "loss") != "TripletLoss":
        return
    negatives = ctx.get("embedding", "hard_negatives")
    if not negatives:
        ctx.error(
            ("embedding", "hard_negatives"),
            "TripletLoss needs a negative per pair, but hard_negatives is 0",
            "set embedding.hard_negatives: 1, or use loss: MultipleNegativesRankingLoss",
        )
    elif negatives != 1:
        # Mined negatives come as columns negative_1..negative_n; TripletLoss reads three.
        ctx.error(
            ("embedding", "hard_negatives"),
            f"TripletLoss takes one negative per pair (anchor, positive, negative), but "
            f"hard_negatives is {negatives}",
            "set embedding.hard_negatives: 1, or use loss: MultipleNegativesRankingLoss "
            "(it takes any number of hard negatives)",
        )


def _no_sweep(ctx: Context) -> None:
    if ctx.user_set("sweep"):
        ctx.error(
            ("sweep",),
            "sweeps apply to task: generation for now; this embedding config cannot run one",
            "remove the sweep block, or set task: generation",
        )


def _serving_embeds(ctx: Context) -> None:
    """deployment.target docker/kubernetes: vLLM serves the trained encoder on /v1/embeddings.

    The encoder is a whole model (method: full), so the deployment rules copy the output folder
    into the serving image; `--runner pooling` makes vLLM load it as a pooling model (its
    pooling and normalization read from the folder's modules.json) rather than a generator.
    """
    if ctx.get("deployment", "target") not in ("docker", "kubernetes"):
        return
    ctx.derive(
        "serving_runner",
        "pooling",
        "embedding_task",
        "task: embedding: vLLM serves the sentence-transformers encoder on /v1/embeddings "
        "(--runner pooling; pooling and normalization from its modules.json)",
    )


def _drop_embedding_settings(ctx: Context) -> None:
    """A generation config records no embedding defaults (its lock file stays about generation)."""
    if ctx.user_set("embedding"):
        ctx.warn(
            ("embedding",),
            "embedding settings apply to task: embedding; this generation config ignores them",
            "set task: embedding, or remove the embedding block",
        )
    ctx.config.pop("embedding", None)
    prefix = ".".join((*ROOT, "embedding"))
    for key in [k for k in ctx.decisions if k == prefix or k.startswith(prefix + ".")]:
        del ctx.decisions[key]


def _method_is_full(ctx: Context) -> None:
    method = ctx.get("fine_tuning", "method")
    if ctx.user_set("fine_tuning", "method") and method not in ("full", "auto"):
        ctx.error(
            ("fine_tuning", "method"),
            f"task: embedding trains every weight of the encoder (method: full), got {method!r}",
            "remove fine_tuning.method, or set it to full",
        )
        return
    ctx.decide(
        ("fine_tuning", "method"),
        "full",
        "embedding_task",
        "task: embedding fine-tunes the whole encoder (sentence-transformers models are small)",
    )
    if ctx.user_set("fine_tuning", "parameters"):
        ctx.warn(
            ("fine_tuning", "parameters"),
            "fine_tuning.parameters configure adapters; task: embedding trains the whole encoder",
        )


def _base_model_is_an_encoder(ctx: Context) -> None:
    base = str(ctx.get("base_model") or "")
    if _sentence_transformers_folder(ctx, base):
        return  # an encoder whatever its architecture (Qwen3-Embedding is a Qwen3 decoder)
    generative = _generative_architecture(ctx, base)
    if generative is None and not any(word in base.lower() for word in _ENCODER_WORDS):
        family = _family_from_config(ctx, base) or family_of(base)
        generative = f"a {family} model" if family else None
    if generative:
        ctx.error(
            ("base_model",),
            f"task: embedding needs an encoder (a sentence-transformers or BERT-like model), "
            f"but {base!r} is {generative}, a generative model",
            "e.g. base_model: sentence-transformers/all-MiniLM-L6-v2, or task: generation",
        )


def _sentence_transformers_folder(ctx: Context, base: str) -> bool:
    """A local folder saved by sentence-transformers (modules.json or its config file)."""
    if not is_local(base):
        return False
    folder = config_relative(base, ctx.config_dir)
    return any((folder / name).is_file() for name in ST_FILES)


def _generative_architecture(ctx: Context, base: str) -> str | None:
    """'a ...ForCausalLM' when a local base model's config.json names a generative head."""
    if not is_local(base):
        return None
    config_file = config_relative(base, ctx.config_dir) / "config.json"
    try:
        config = json.loads(read_bounded(config_file, MiB, "a model config"))
        architectures = [str(a) for a in config.get("architectures") or []]
    except (OSError, ValueError, AttributeError):
        return None
    for name in architectures:
        if name.endswith(("ForCausalLM", "ForConditionalGeneration", "LMHeadModel")):
            return f"a {name}"
    return None


def _evaluation_is_retrieval(ctx: Context) -> None:
    if not ctx.user_set("evaluation"):
        return
    for name in GENERATION_ONLY:
        if ctx.user_set("evaluation", name):
            ctx.error(
                ("evaluation", name),
                f"evaluation.{name} scores generated text; an embedding model is scored on "
                f"retrieval ({', '.join(EMBEDDING_SCORES)}) of the held-out documents",
                f"remove evaluation.{name}; gates may name {', '.join(EMBEDDING_SCORES)}",
            )
    if not ctx.get("dataset", "validation", "split_ratio"):
        ctx.error(
            ("dataset", "validation", "split_ratio"),
            "the retrieval evaluation needs held-out documents, but split_ratio is 0 (an empty "
            "split)",
            "e.g. dataset.validation.split_ratio: 0.2 (whole documents are held out)",
        )
