"""Training throughput: lfm's emitted train.py against a plain HF Trainer + peft script (and peers).

One process tree, the same model, data, sequence length, batch, steps and LoRA settings for
every arm. Arms run as fresh child processes, repeats alternating their order (A B, B A, ...)
because the machine is shared: a neighbour's load then hits both arms alike. Each run reports
real (non-pad) tokens per second, total tokens per second (pads included), peak resident
memory (the child's own ru_maxrss, from wait4), peak GPU memory on CUDA, and the final loss
(mean over the last 10 steps).

Arms:
- ``lfm``: ``lfm compile`` of a config, then ``python train.py`` (packing on, the default).
- ``plain_hf``: benchmarks/plain_hf_train.py (padding to the longest example in each batch).
- ``llamafactory`` / ``axolotl`` (optional): the peers, each from its own virtual environment,
  given by ``--llamafactory-venv``/``--axolotl-venv`` or the ``LFM_BENCH_LLAMAFACTORY_VENV`` /
  ``LFM_BENCH_AXOLOTL_VENV`` environment variables; each runs with its defaults and with
  packing (see peers.py).

    python benchmarks/train_throughput.py                      # CPU, tiny Llama
    python benchmarks/train_throughput.py --device cuda --shape small --out $OUT/x.json

Writes benchmarks/results/train_throughput.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import alpaca_like  # noqa: E402
import peers  # noqa: E402

RESULTS = HERE / "results" / "train_throughput.json"
SHAPES = {
    # The tiny Llama of the tests (about 0.1M parameters, vocab 512).
    "tiny": None,
    # A real small architecture, random-initialized: about 0.15B parameters.
    "small": {
        "hidden_size": 1024,
        "intermediate_size": 2816,
        "num_hidden_layers": 8,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
    },
    # A compute-bound size on a GPU, random-initialized: about 0.9B parameters.
    "medium": {
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 16,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
    },
}
LEARNING_RATE = {"lora": 2e-4, "full": 2e-5}


def main() -> None:
    args = _parse()
    if args.compile_only:
        for method in args.methods:
            _compile(args, Path(args.compile_only), method, Path(args.compile_only) / method)
        print(f"compiled {', '.join(args.methods)} bundles into {args.compile_only}")
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    if args.device == "cpu" and args.threads:
        # One thread per arm: OpenMP threads spin-waiting on a busy shared CPU distort timings.
        env["OMP_NUM_THREADS"] = str(args.threads)
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    root = Path(tempfile.mkdtemp(prefix="lfm-bench-", dir=args.workdir))
    try:
        runs = _run_all(args, root, env)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = _report(args, runs)
    out = Path(args.out) if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(report["summary"], indent=2, sort_keys=True))
    print(f"wrote {out}")


def _run_all(
    args: argparse.Namespace, root: Path, env: dict[str, str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    # Precompiled bundles (--bundles) find the model and data beside them, by relative path.
    home = Path(args.bundles).resolve() if args.bundles else root
    if args.bundles:
        _check_bundles(home, args)
    model = _build_model(home / "model", args.shape)
    data = alpaca_like.write(home / "data.jsonl", args.records)
    arms = _arms(args, root, model, data)
    names = ["lfm", "plain_hf"] + [name for name in arms if name not in ("lfm", "plain_hf")]
    names = [name for name in names if not args.arms or name in args.arms]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for method in args.methods:
        here = [n for n in names if n in ("lfm", "plain_hf") or method in args.peer_methods]
        for repeat in range(args.repeats):
            order = here if repeat % 2 == 0 else list(reversed(here))
            for name in order:
                result = arms[name](method, root / f"{name}-{method}-{repeat}", env)
                runs.setdefault(method, {}).setdefault(name, []).append(result)
                print(f"{method:5} {name:28} #{repeat} {_line(result)}", flush=True)
    return runs


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--methods", nargs="+", choices=["lora", "full"], default=["lora", "full"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument(
        "--logging-steps",
        type=int,
        default=10,
        help="every arm logs (and reads its loss back) this often (default 10)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads per arm (0: torch default)"
    )
    parser.add_argument(
        "--compile-only", metavar="DIR", help="only compile the lfm bundles into DIR"
    )
    parser.add_argument("--bundles", metavar="DIR", help="use the bundles of --compile-only DIR")
    parser.add_argument(
        "--peer-methods", nargs="+", default=["lora"], help="methods the peers run (default lora)"
    )
    parser.add_argument(
        "--exclude-final-save",
        action="store_true",
        help="time lfm and plain HF to their last step's log (lfm's end-of-run checkpoint out)",
    )
    parser.add_argument("--arms", nargs="+", help="run only these arms (default: all)")
    parser.add_argument("--workdir", help="where the temporary working directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument(
        "--out", help="result file (default benchmarks/results/train_throughput.json)"
    )
    parser.add_argument(
        "--llamafactory-venv", default=os.environ.get("LFM_BENCH_LLAMAFACTORY_VENV")
    )
    parser.add_argument("--axolotl-venv", default=os.environ.get("LFM_BENCH_AXOLOTL_VENV"))
    args = parser.parse_args()
    if args.exclude_final_save and args.steps % args.logging_steps:
        parser.error(
            "--exclude-final-save times lfm to its last log: make --steps a multiple "
            "of --logging-steps"
        )
    return args


def _logs_in_last_10_steps(logging_steps: int) -> int:
    """The final loss is the mean over the last 10 steps: one log of 10 steps, or 10 of 1."""
    return max(1, 10 // logging_steps)


def _check_bundles(home: Path, args: argparse.Namespace) -> None:
    """Precompiled bundles must train as many steps, as long and as often logged as this run."""
    for method in args.methods:
        config = home / method / "bench.yaml"
        if not config.exists():
            raise SystemExit(f"no {method} bundle in {home}: run with --compile-only {home} first")
        text = config.read_text(encoding="utf-8")
        for key, value in (
            ("max_steps", args.steps),
            ("max_length", args.seq),
            ("batch_size", args.batch),
            ("logging_steps", args.logging_steps),
        ):
            if f"{key}: {value}\n" not in text and f"{key}: {value}}}" not in text:
                raise SystemExit(
                    f"{config} was compiled with another {key} than this run's {value}: "
                    "compile the bundles again with the same settings"
                )


def _build_model(out: Path, shape: str) -> Path:
    from lfm.runtime.tiny import build_tiny_model

    build_tiny_model(out, overwrite=True)  # a rerun on the same bundles rebuilds it
    if SHAPES[shape] is None:
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(out)
    for key, value in (SHAPES[shape] or {}).items():
        setattr(config, key, value)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


def _arms(args: argparse.Namespace, root: Path, model: Path, data: Path) -> dict[str, Any]:
    def lfm(method: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
        if args.bundles:
            bundle = Path(args.bundles).resolve() / method / "bundle"
            shutil.rmtree(bundle / "output", ignore_errors=True)
        else:
            bundle = _compile(args, root, method, work)
        seconds, rusage = _run([sys.executable, str(bundle / "train.py")], env, work)
        metrics = json.loads((bundle / "output" / "metrics.json").read_text(encoding="utf-8"))
        losses = [s["loss"] for s in metrics["steps"]]
        runtime = metrics["train_runtime"]
        if args.exclude_final_save:
            # Time to the last step's log: the Trainer's end-of-run checkpoint comes after it
            # (the plain script saves nothing). GPU runs of a 0.15B model write GBs there.
            lines = (bundle / "output" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
            runtime = json.loads(lines[-1])["elapsed_seconds"]
        return _result(
            runtime,
            metrics["num_input_tokens_seen"],
            metrics["num_total_tokens"],
            statistics.mean(losses[-_logs_in_last_10_steps(args.logging_steps) :]),
            rusage,
            metrics.get("gpu_peak_mb"),
            seconds,
        )

    def plain_hf(method: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
        work.mkdir(parents=True)
        command = [sys.executable, *plain_hf_command(args, model, data, method, work)]
        seconds, rusage = _run(command, env, work)
        r = json.loads((work / "result.json").read_text(encoding="utf-8"))
        return _result(
            # Timed as the lfm arm is: to the last log, or the Trainer's whole train_runtime.
            r["seconds_to_last_log"] if args.exclude_final_save else r["train_runtime"],
            r["real_tokens"],
            r["total_tokens"],
            r["final_loss"],
            rusage,
            r["gpu_peak_mb"],
            seconds,
        )

    arms: dict[str, Any] = {"lfm": lfm, "plain_hf": plain_hf}
    settings = peers.Settings(
        model=model,
        data=data,
        steps=args.steps,
        batch=args.batch,
        seq=args.seq,
        rank=args.rank,
        learning_rate=LEARNING_RATE,
        bf16=args.device == "cuda",
        logging_steps=args.logging_steps,
    )
    for name, venv in (("llamafactory", args.llamafactory_venv), ("axolotl", args.axolotl_venv)):
        if venv:
            for variant in ("default", "packing"):
                arms[f"{name}_{variant}"] = peers.runner(
                    name, Path(venv), variant, settings, _run, _result
                )
    return arms


def plain_hf_command(
    args: argparse.Namespace, model: Path, data: Path, method: str, work: Path
) -> list[str]:
    """plain_hf_train.py and its arguments for one run (the same settings as the lfm arm)."""
    return [
        str(HERE / "plain_hf_train.py"),
        f"--model={model}",
        f"--data={data}",
        f"--out={work}",
        f"--method={method}",
        f"--steps={args.steps}",
        f"--batch={args.batch}",
        f"--seq={args.seq}",
        f"--rank={args.rank}",
        f"--lr={LEARNING_RATE[method]}",
        f"--logging-steps={args.logging_steps}",
    ] + (["--bf16"] if args.device == "cuda" else [])


def _compile(args: argparse.Namespace, root: Path, method: str, work: Path) -> Path:
    """Compile the lfm arm's config; model and data paths are relative (root = work/..)."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "bench.yaml"
    precision = "bf16" if args.device == "cuda" else "fp32"
    lora = (
        f"    parameters: {{r: {args.rank}, lora_alpha: {2 * args.rank}, lora_dropout: 0.0, "
        "target_modules: [q_proj, k_proj, v_proj, o_proj]}\n"
        if method == "lora"
        else ""
    )
    config.write_text(
        "model_config:\n"
        f"  name: bench-{method}\n"
        "  version: 0.1.0\n"
        f"  base_model: {os.path.relpath(root / 'model', work)}\n"
        "  fine_tuning:\n"
        f"    method: {method}\n"
        f"{lora}"
        "    training:\n"
        f"      max_steps: {args.steps}\n"
        f"      batch_size: {args.batch}\n"
        f"      learning_rate: {LEARNING_RATE[method]}\n"
        "      lr_scheduler: linear\n"
        f"      logging_steps: {args.logging_steps}\n"
        "      save_steps: 100000\n"
        f"      precision: {precision}\n"
        "  dataset:\n"
        f"    source: {{type: local, path: {os.path.relpath(root / 'data.jsonl', work)}}}\n"
        f"    preprocessing: {{format: alpaca, max_length: {args.seq}}}\n"
        "    validation: {split_ratio: 0}\n",
        encoding="utf-8",
    )
    bundle = work / "bundle"
    subprocess.run(
        [sys.executable, "-m", "lfm.cli", "compile", str(config), "-o", str(bundle)],
        check=True,
        capture_output=True,
    )
    return bundle


def _run(command: list[str], env: dict[str, str], work: Path) -> tuple[float, Any]:
    """Run a child to completion; its wall time and its own resource usage (wait4)."""
    work.mkdir(parents=True, exist_ok=True)
    log = (work / "log.txt").open("w", encoding="utf-8")
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    _, status, rusage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    if child.returncode != 0:
        tail = (work / "log.txt").read_text(encoding="utf-8")[-3000:]
        raise SystemExit(f"{command[:2]} failed ({child.returncode}):\n{tail}")
    return time.perf_counter() - start, rusage


def _result(
    runtime: float,
    real: int,
    total: int,
    final_loss: float | None,
    rusage: Any,
    gpu_peak_mb: float | None,
    wall: float,
) -> dict[str, Any]:
    return {
        "train_runtime_s": round(runtime, 3),
        "process_wall_s": round(wall, 2),
        "real_tokens": real,
        "total_tokens": total,
        "non_pad_tokens_per_s": round(real / runtime, 1),
        "total_tokens_per_s": round(total / runtime, 1),
        "token_efficiency": round(real / total, 4) if total else None,
        "peak_rss_mb": round(rusage.ru_maxrss / 1024, 1),
        "gpu_peak_mb": gpu_peak_mb,
        "final_loss": None if final_loss is None else round(final_loss, 4),
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['non_pad_tokens_per_s']:>10,.0f} non-pad tok/s  eff {r['token_efficiency']}  "
        f"rss {r['peak_rss_mb']:,.0f} MB  loss {r['final_loss']}"
    )


def _report(
    args: argparse.Namespace, runs: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method, arms in runs.items():
        rows = {}
        for name, results in arms.items():
            rows[name] = {
                key: statistics.median([r[key] for r in results])
                for key in (
                    "non_pad_tokens_per_s",
                    "total_tokens_per_s",
                    "peak_rss_mb",
                    "token_efficiency",
                )
                if all(r[key] is not None for r in results)
            } | {
                "final_loss": [r["final_loss"] for r in results],
                "gpu_peak_mb": max((r["gpu_peak_mb"] or 0) for r in results) or None,
            }
        base = rows.get("plain_hf", {}).get("non_pad_tokens_per_s")
        for row in rows.values():
            if base:
                row["speedup_vs_plain_hf"] = round(row["non_pad_tokens_per_s"] / base, 2)
        summary[method] = rows
    return {
        "what": "lfm train.py (packing) vs a plain HF Trainer + peft script (padding to longest) and peers; medians over repeats",
        "note": (
            "Arms run one at a time as child processes, repeats alternating the order (A B, B A, ...): "
            "the machine is shared with other jobs, so absolute numbers move with its load; compare arms "
            "within one run. Peak RSS is each child's own ru_maxrss."
        ),
        "settings": {
            "device": args.device,
            "shape": args.shape,
            "steps": args.steps,
            "batch": args.batch,
            "seq_len": args.seq,
            "lora_rank": args.rank,
            "logging_steps": args.logging_steps,
            "repeats": args.repeats,
            "records": args.records,
            "lfm_timing": "lfm and plain HF from the loop's start to the last step's log "
            "(lfm's end-of-run checkpoint excluded); peers: their Trainer train_runtime"
            if args.exclude_final_save
            else "Trainer train_runtime (includes lfm's end-of-run checkpoint; plain HF saves none)",
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
        "summary": summary,
        "runs": runs,
    }


if __name__ == "__main__":
    main()
