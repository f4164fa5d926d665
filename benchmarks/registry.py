"""Registry speed and storage: register, list (1,000 versions present), pull; dedup vs copies.

Side by side in one run, on the embedded registry in a temporary directory:

- storage: 20 LoRA adapters of one tiny base, each saved as a training output saves it
  (adapter + tokenizer + README), registered as 20 versions, next to two naive layouts: a copy
  of each training output per version, and a copy of base + adapter per version (what a
  registry of deployable model folders stores);
- register: in-process `register()` per adapter, and a cold `lfm register` process;
- list: in-process and a cold `lfm list` process, with 1,000 versions present, with and without
  a filter;
- pull: a cold `lfm pull` process (copy, and hard-link) and in-process `pull()`/`resolve()`.

    python benchmarks/registry.py [--versions 1000] [--runs 7]

Prints a table and writes results/registry.json.
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LFM = [sys.executable, "-m", "lfm.cli"]
ADAPTERS = 20


def build_adapters(root: Path) -> tuple[Path, list[Path]]:
    """A tiny base and 20 LoRA adapters of it (different seeds), saved with the tokenizer."""
    import torch
    from lfm.runtime.tiny import build_tiny_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = build_tiny_model(root / "base", pretrain_steps=0)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    adapters = []
    for i in range(ADAPTERS):
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(str(base))
        config = LoraConfig(
            task_type="CAUSAL_LM",
            r=8,
            lora_alpha=16,
            init_lora_weights=False,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        )
        out = root / f"adapter-{i:02}"
        get_peft_model(model, config).save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        adapters.append(out)
    return base, adapters


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run_cli(registry: Path, *args: str) -> float:
    env = {**os.environ, "LFM_REGISTRY": str(registry)}
    return timed(lambda: subprocess.run([*LFM, *args], env=env, check=True, capture_output=True))


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "min_ms": round(min(samples) * 1000, 2),
        "runs": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lfm.registry.embedded import EmbeddedRegistry
    from lfm.registry.prepare import prepare

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="lfm-bench-") as tmp_name:
        tmp = Path(tmp_name)
        base, adapters = build_adapters(tmp / "models")

        # ---- storage and in-process register ----------------------------------------------
        # Adapters alone first (against a copy of each training output), then the same registry
        # with the base added (against base + adapter copied per version).
        registry = tmp / "registry"
        store = EmbeddedRegistry(registry)
        register_s = []
        for i, adapter in enumerate(adapters):
            request = prepare(adapter, name="adapter", version=f"1.0.{i}")
            register_s.append(timed(lambda request=request: store.register(request)))
        adapters_blobs = tree_size(registry / "blobs")
        store.register(prepare(base, name="base", version="1.0.0"))
        all_blobs = tree_size(registry / "blobs")
        naive_outputs = sum(tree_size(a) for a in adapters)
        naive_with_base = naive_outputs + ADAPTERS * tree_size(base)
        results["storage_20_adapters"] = {
            "base_model_bytes": tree_size(base),
            "one_adapter_output_bytes": tree_size(adapters[0]),
            "registry_blobs_20_adapters_bytes": adapters_blobs,
            "naive_copy_of_each_output_bytes": naive_outputs,
            "saving_vs_copy_of_each_output": round(naive_outputs / adapters_blobs, 2),
            "registry_blobs_base_plus_20_adapters_bytes": all_blobs,
            "naive_base_plus_adapter_per_version_bytes": naive_with_base,
            "saving_vs_base_plus_adapter_per_version": round(naive_with_base / all_blobs, 2),
            "registry_metadata_bytes": sum(
                p.stat().st_size for p in registry.glob("registry.db*") if p.is_file()
            ),
        }
        results["register_in_process"] = summary(register_s)
        cold = [
            run_cli(
                registry,
                "register",
                "--model",
                str(adapters[i % ADAPTERS]),
                "--name",
                "cold",
                "--version",
                f"2.0.{i}",
            )
            for i in range(args.runs)
        ]
        results["register_cold_process"] = summary(cold)

        # ---- pull -------------------------------------------------------------------------
        pulls = tmp / "pulls"
        results["pull_cold_process_copy"] = summary(
            [
                run_cli(registry, "pull", "adapter:1.0.3", "--to", str(pulls / f"c{i}"))
                for i in range(args.runs)
            ]
        )
        results["pull_cold_process_link"] = summary(
            [
                run_cli(registry, "pull", "adapter:1.0.3", "--to", str(pulls / f"l{i}"), "--link")
                for i in range(args.runs)
            ]
        )
        results["pull_in_process_copy"] = summary(
            [
                timed(lambda i=i: store.pull("adapter:1.0.3", pulls / f"p{i}"))
                for i in range(args.runs)
            ]
        )
        store.resolve("adapter:1.0.3")  # the first resolve writes the checkout
        results["resolve_in_process_cached_checkout"] = summary(
            [timed(lambda: store.resolve("adapter:1.0.3")) for _ in range(args.runs)]
        )

        # ---- list with N versions present ------------------------------------------------
        small = tmp / "small"
        small.mkdir()
        filler_start = time.perf_counter()
        present = len(store.list_versions())
        for i in range(args.versions - present):
            (small / "weights.bin").write_bytes(i.to_bytes(4, "little") * 64)
            (small / "config.json").write_text("{}")
            tag = "medical" if i % 10 == 0 else "general"
            store.register(
                prepare(small, name=f"m{i % 50:02}", version=f"1.{i // 50}.0", tags={"domain": tag})
            )
        filler_s = time.perf_counter() - filler_start
        total = len(store.list_versions())
        results["versions_present_for_list"] = total
        results["register_in_process_bulk_mean_ms"] = round(
            filler_s / max(1, args.versions - present) * 1000, 2
        )
        results["list_in_process"] = summary([timed(store.list_versions) for _ in range(args.runs)])
        results["list_cold_process"] = summary(
            [run_cli(registry, "list", "--json") for _ in range(args.runs)]
        )
        results["list_cold_process_filter_domain_medical"] = summary(
            [
                run_cli(registry, "list", "--filter", "domain=medical", "--json")
                for _ in range(args.runs)
            ]
        )
        results["python_c_pass_cold_process"] = summary(
            [
                timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
                for _ in range(args.runs)
            ]
        )
        store.close()
        shutil.rmtree(pulls, ignore_errors=True)

    for name, value in results.items():
        print(f"{name}: {value}")
    out = REPO / "benchmarks" / "results" / "registry.json"
    out.parent.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus()}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    main()
