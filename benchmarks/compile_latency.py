"""Cold `lfm compile` latency: whole-process runs, side by side with `python -c pass`.

Each run is a fresh interpreter (what a user or CI pays), compiling the seed's unified config
into a temporary bundle. Prints a table and writes results/compile_latency.json.

    python benchmarks/compile_latency.py [--runs 21]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = "examples/seed_unified.json"


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "lfm compile (seed unified config)": [
                sys.executable,
                "-m",
                "lfm.cli",
                "compile",
                CONFIG,
                "-o",
                f"{tmp}/bundle",
            ],
            "lfm validate (seed unified config)": [
                sys.executable,
                "-m",
                "lfm.cli",
                "validate",
                CONFIG,
            ],
        }
        for argv in commands.values():
            timed(argv)  # warm the OS file cache once; every measured run is still a cold process
        samples = {name: [timed(argv) for _ in range(args.runs)] for name, argv in commands.items()}
    results = {
        name: {
            "median_s": round(statistics.median(s), 4),
            "min_s": round(min(s), 4),
            "runs": len(s),
        }
        for name, s in samples.items()
    }
    baseline = results["python -c pass"]["median_s"]
    for r in results.values():
        r["over_python_s"] = round(r["median_s"] - baseline, 4)
    width = max(map(len, results))
    print(f"{'command':<{width}}  median    min       over python")
    for name, r in results.items():
        print(
            f"{name:<{width}}  {r['median_s']:.3f} s  {r['min_s']:.3f} s  {r['over_python_s']:+.3f} s"
        )
    out = REPO / "benchmarks" / "results" / "compile_latency.json"
    out.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus()}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
