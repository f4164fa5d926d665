"""Retrieval scores for an embedding model: sentence-transformers' InformationRetrievalEvaluator.

The held-out documents' questions search every passage; a question's one relevant passage is
the chunk it was generated from. Scores (cosine similarity, whatever similarity a model was saved
with, so that base and tuned are scored alike): recall@1, recall@5, recall@10, mrr@10 and
ndcg@10. They go into eval_results.json in the same shape as a generation model's
(results.build), so the same gates (min_scores, min_improvement, max_regression) apply.

:func:`evaluate_file` is `lfm evaluate` on a sentence-transformers folder: the questions of a
pairs file (heldout_pairs.jsonl, or any records with question and passage) search that file's
passages.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..embedding import RetrievalData, pair_from_record, passage_id
from . import gates as quality_gates
from . import report, results

PathLike = str | os.PathLike[str]
SCORE_FUNCTION = "cosine"  # the evaluator's keys are "<name>_cosine_<score>"
# lfm's score name -> the evaluator's key after "<name>_cosine_".
SCORE_KEYS = {
    "recall@1": "recall@1",
    "recall@5": "recall@5",
    "recall@10": "recall@10",
    "mrr@10": "mrr@10",
    "ndcg@10": "ndcg@10",
}


def evaluator(data: RetrievalData, *, batch_size: int, name: str = "heldout") -> Any:
    """InformationRetrievalEvaluator over the held-out questions and every passage."""
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )
    from sentence_transformers.util import cos_sim

    if not data.test:
        from ..errors import RuntimeConfigError

        raise RuntimeConfigError(
            "dataset.validation.split_ratio: no held-out questions to evaluate (an empty split)"
        )
    return InformationRetrievalEvaluator(
        queries=data.queries(),
        corpus=dict(data.passages),
        relevant_docs=data.relevant(),
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[1, 5, 10],
        map_at_k=[10],
        batch_size=batch_size,
        name=name,
        # Without these the evaluator scores with each model's own similarity_fn_name (a model
        # saved with "dot" would have "<name>_dot_..." keys, and base and tuned differ).
        score_functions={SCORE_FUNCTION: cos_sim},
        main_score_function=SCORE_FUNCTION,
        write_csv=False,
        show_progress_bar=False,
    )


def scores(model: Any, ir_evaluator: Any) -> dict[str, float]:
    """The model's retrieval scores by lfm's names (recall@1, ..., mrr@10, ndcg@10)."""
    found = ir_evaluator(model)
    prefix = f"{ir_evaluator.name}_{SCORE_FUNCTION}_"
    return {name: float(found[prefix + key]) for name, key in SCORE_KEYS.items()}


def finish(
    model_id: str,
    tuned: Mapping[str, float],
    base: Mapping[str, float] | None,
    gates: quality_gates.Gates,
    *,
    model_path: str,
    base_model: str,
    data: RetrievalData,
    output_dir: PathLike,
) -> bool:
    """Write eval_results.json and eval_report.md, print the table and gates; False when a
    gate failed."""
    from .run import print_summary

    payload = results.build(
        model_id,
        results.ModelScores(model_path, metrics=dict(tuned)),
        results.ModelScores(base_model, metrics=dict(base)) if base is not None else None,
        base_model=base_model,
        settings={
            "task": "embedding",
            "evaluator": "InformationRetrievalEvaluator",
            "score_function": SCORE_FUNCTION,
            "queries": len(data.test),
            "corpus": len(data.passages),
        },
        datasets=[_held_out(data)],
    )
    checked = quality_gates.check_all(gates, payload)
    results.with_gates(payload, checked)
    out = Path(output_dir)
    written = results.write_json(out / results.RESULTS_FILE, {"evaluation_results": payload})
    report_path = report.write_report(payload, out)
    print_summary(payload)
    for gate in checked:
        print(gate.message(), file=sys.stderr if not gate.passed else sys.stdout)
    print(f"[lfm] wrote {written} and {report_path}", file=sys.stderr)
    failure = quality_gates.failure_line(checked)
    if failure:
        print(f"error: {failure}", file=sys.stderr)
    return bool(payload["passed"])


def _held_out(data: RetrievalData) -> dict[str, Any]:
    """The held-out questions as eval_results.json's datasets entry (with a content hash)."""
    text = json.dumps([vars(p) for p in data.test], sort_keys=True, ensure_ascii=False)
    return {
        "name": "held-out documents",
        "split": "test",
        "examples": len(data.test),
        "documents": sorted({p.document for p in data.test}),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def file_pairs(path: PathLike, *, limit: int | None = None) -> RetrievalData:
    """A pairs file (JSONL/JSON/CSV records with question and passage, and optionally document,
    as train.py writes heldout_pairs.jsonl) as held-out questions over the file's passages: the
    corpus is what the file holds, not the training passages evaluate.py also searches."""
    from ..data import DatasetSpec, load_records

    spec = DatasetSpec(
        source_type="local", path=str(path), format="auto", max_length=2048, holdout_ratio=0
    )
    records = load_records(spec)
    pairs = tuple(pair_from_record(r, i, f"--dataset {path}") for i, r in enumerate(records))
    every = {passage_id(p.passage): p.passage for p in pairs}  # before --limit: the same corpus
    return RetrievalData((), pairs[:limit] if limit else pairs, dict(sorted(every.items())))


def evaluate_file(
    model: str,
    dataset: PathLike,
    gates: quality_gates.Gates,
    *,
    compare: str | None = None,
    output_dir: PathLike,
    batch_size: int = 32,
    limit: int | None = None,
) -> bool:
    """Score ``model`` (and ``compare``, another embedding model) on a pairs file; write
    eval_results.json and the report like evaluate.py; False when a gate failed."""
    from ..embedding_train import load_encoder

    data = file_pairs(dataset, limit=limit)
    ir_evaluator = evaluator(data, batch_size=batch_size, name=Path(dataset).stem)
    tuned = scores(load_encoder(model, base_dir=".", max_seq_length=None), ir_evaluator)
    other = None
    if compare:
        other = scores(load_encoder(compare, base_dir=".", max_seq_length=None), ir_evaluator)
    return finish(
        _model_id(model),
        tuned,
        other,
        gates,
        model_path=model,
        base_model=compare or model,
        data=data,
        output_dir=output_dir,
    )


def _model_id(model: str) -> str:
    """A training output is known by its bundle's folder, another model by its own."""
    path = Path(model)
    return path.resolve().parent.name if path.name == "output" else path.name or model
