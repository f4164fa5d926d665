"""Proof that a model learns from a user's documents: documents -> dataset -> LoRA -> evaluation.

Runs examples/documents_to_model.yaml as a user would, in a scratch folder: `lfm compile`, then
the bundle's train.py, which builds the Q&A dataset from the Python tutorial's HTML chapters
(whole chapters held out), trains LoRA on SmolLM2-135M-Instruct and runs evaluate.py, which
scores the base model and the fine-tuned one on the held-out chapters' questions: perplexity of
the reference answers, ROUGE-L and token F1 of greedy answers. Records the dataset's counts, the
wall time of each stage and both models' figures side by side.

    lfm dev real-model MODEL_DIR                          # once: SmolLM2-135M-Instruct, offline
    python benchmarks/documents_to_model.py MODEL_DIR     # ~10 minutes on 2 CPU cores

Writes benchmarks/results/documents_to_model.json and .md (or --out and the .md beside it).
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
CONFIG = EXAMPLES / "documents_to_model.yaml"
RESULTS = HERE / "results" / "documents_to_model.json"
METRICS = ("perplexity", "rougeL", "f1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="SmolLM2-135M-Instruct (lfm dev real-model DIR)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="Run in this folder and keep it.")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        sys.exit(f"{args.model} holds no model: run `lfm dev real-model {args.model}` first")
    work = args.keep or Path(tempfile.mkdtemp(prefix="lfm-d2m-"))
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
    config.write_text(CONFIG.read_text().replace("base_model: ./smollm2", f"base_model: {model}"))
    bundle = work / "bundle"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    _run(["lfm", "compile", str(config), "-o", str(bundle)], env)
    compiled = time.perf_counter()
    log = _run([sys.executable, str(bundle / "train.py")], env)
    finished = time.perf_counter()
    (work / "train.log").write_text(log)
    output = bundle / "output"
    report = json.loads(next((bundle / ".lfm-dataset").glob("*/dataset_report.json")).read_text())
    evaluation = json.loads((output / "eval" / "eval_results.json").read_text())
    metrics = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    figures = compare(evaluation)
    return {
        "benchmark": "documents_to_model",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "documents": report["documents"]["read"],
        "chunks": report["chunks"],
        "pairs": report["records"],
        "dataset_quality_score": report["metrics"]["quality_score"],
        "train_steps": max((m.get("step", 0) for m in metrics), default=0),
        "seconds": {
            "compile": round(compiled - start, 1),
            "dataset_train_evaluate": round(finished - compiled, 1),
            "total": round(finished - start, 1),
        },
        "held_out_questions": evaluation_size(evaluation),
        "base_vs_fine_tuned": figures,
        "learned": all(f["better"] for f in figures.values()),
    }


def compare(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Base and fine-tuned per metric, from evaluate.py's scores (each knows its direction)."""
    scores = evaluation["evaluation_results"]["scores"]
    out = {}
    for name in METRICS:
        score = scores[name]
        base, tuned = score["base"], score["value"]
        better = tuned > base if score["higher_is_better"] else tuned < base
        out[name] = {"base": base, "fine_tuned": tuned, "better": better}
    return out


def evaluation_size(evaluation: dict[str, Any]) -> int:
    """How many held-out questions both models answered."""
    return sum(d["examples"] for d in evaluation["evaluation_results"]["datasets"])


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def table(result: dict[str, Any]) -> str:
    pairs = result["pairs"]
    lines = [
        "# From documents to a model (benchmarks/documents_to_model.py)",
        "",
        f"{result['documents']} chapters of the Python tutorial -> {result['chunks']} chunks -> "
        f"{pairs['kept']} Q&A pairs ({pairs['train']} train, {pairs['test']} held out with "
        f"their chapters); {result['train_steps']} LoRA steps on SmolLM2-135M-Instruct; "
        f"{result['held_out_questions']} held-out questions; "
        f"{result['seconds']['total']:.0f} s in all on {result['machine']['cpus']} CPUs.",
        "",
        "| held-out metric | base | fine-tuned | better |",
        "| --- | ---: | ---: | :---: |",
    ]
    for name, f in result["base_vs_fine_tuned"].items():
        lines.append(
            f"| {name} | {f['base']:.4g} | {f['fine_tuned']:.4g} | {'yes' if f['better'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
