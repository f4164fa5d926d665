"""Per-step overhead, side by side: torch operators and host reads of one training step.

A small model on a GPU is launch-bound: each torch operator is at least one kernel launch,
and each host read (``item``, ``tolist``, ``bool`` of a tensor, ``nonzero``, a boolean index)
makes the CPU wait until every queued kernel has run, so the CPU can no longer run ahead.
Those two counts, not the FLOPs, decide its step time, and unlike a timing they are the same
on any machine: this script measures them here, on a CPU, for the emitted lfm ``train.py``
and the plain HF Trainer + peft script (benchmarks/plain_hf_train.py), each run in a child
process under a probe that counts, between the end of a warm-up step and the end of the run:

- ``ops``: aten operators dispatched (forward, backward, optimizer, everything);
- ``host_reads``: ``Tensor.item``/``tolist``/``__bool__``/``__float__``/``__int__``/``numpy``
  calls and the operators whose output size depends on data (``nonzero``,
  ``masked_select``, ``unique``...), each with the line of the caller that asked for it (the
  first frame outside torch), so an added read can be found.

Both leave out the DataLoader's fetching and collating (counted apart): its tensors are on the
host on every machine, so it launches no kernel and waits for no GPU.

``--as-cuda`` makes lfm choose its packed attention as on a CUDA GPU (transformers' packed
sdpa mask rather than the per-example loop the CPU path uses), so the counts are those of
the GPU path. Both arms log every ``--logging-steps`` steps.

    python benchmarks/step_overhead.py [--as-cuda] [--steps 22] [--shape tiny|small]

Writes benchmarks/results/step_overhead[_as_cuda].json (or --out).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import runpy
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Operators whose output size depends on tensor values: on CUDA each waits for the queue.
SYNCING_OPS = (
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::masked_select",
    "aten::_unique2",
    "aten::unique_consecutive",
    "aten::unique_dim",
    "aten::repeat_interleave",
)
HOST_READ_METHODS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy")
WARMUP_STEPS = 2


def main() -> None:
    args = _parse()
    if args.child:
        _probe_child(args)
        return
    import alpaca_like
    import train_throughput  # the same model, data and bundle compile as the throughput bench

    root = Path(tempfile.mkdtemp(prefix="lfm-overhead-"))
    try:
        model = train_throughput._build_model(root / "model", args.shape)
        data = alpaca_like.write(root / "data.jsonl", args.records)
        bench = argparse.Namespace(
            rank=16,
            steps=args.steps,
            batch=args.batch,
            seq=args.seq,
            device="cpu",
            logging_steps=args.logging_steps,
        )
        arms = {}
        for method in args.methods:
            bundle = train_throughput._compile(bench, root, method, root / f"lfm-{method}")
            arms[f"lfm_{method}"] = [str(bundle / "train.py")]
            work = root / f"plain-{method}"
            work.mkdir()
            arms[f"plain_hf_{method}"] = train_throughput.plain_hf_command(
                bench, model, data, method, work
            )
        results = {name: _run_probed(name, argv, root, args) for name, argv in arms.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    suffix = "_as_cuda" if args.as_cuda else ""
    out = Path(args.out or HERE / "results" / f"step_overhead{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "what": __doc__.splitlines()[0],
        "settings": {
            "shape": args.shape,
            "steps": args.steps,
            "measured_steps": args.steps - WARMUP_STEPS,
            "batch": args.batch,
            "seq": args.seq,
            "logging_steps": args.logging_steps,
            "as_cuda": args.as_cuda,
            "machine": platform.machine(),
        },
        "arms": results,
    }
    out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name, result in results.items():
        print(
            f"{name:16} {result['ops_per_step']:>9.1f} ops/step  "
            f"{result['host_reads_per_step']:>6.2f} host reads/step"
        )
    print(f"wrote {out}")


def _run_probed(name: str, argv: list[str], root: Path, args: argparse.Namespace) -> Any:
    report = root / f"{name}.probe.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(report)]
    command += ["--as-cuda"] if args.as_cuda else []
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }
    log = root / f"{name}.log"
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.call(
            command + ["--", *argv],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=Path(argv[0]).parent,
        )
    if code != 0:
        raise SystemExit(f"{name} failed ({code}):\n{log.read_text(encoding='utf-8')[-3000:]}")
    return json.loads(report.read_text(encoding="utf-8"))


class _Probe:
    """Counts dispatched aten operators and host reads, with the caller of each read."""

    def __init__(self) -> None:
        self.ops = 0
        self.host_reads = 0
        # While the DataLoader fetches and collates a batch: host tensors on every machine, so
        # its operators launch no GPU kernel and its reads wait for no GPU. Counted apart.
        self.loading = False
        self.loading_ops = 0
        self.loading_reads = 0
        self.read_sites: collections.Counter[str] = collections.Counter()
        self.syncing_ops: collections.Counter[str] = collections.Counter()

    def read(self, what: str) -> None:
        if self.loading:
            self.loading_reads += 1
            return
        self.host_reads += 1
        self.read_sites[f"{what} at {_caller()}"] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "host_reads": self.host_reads,
            "loading_ops": self.loading_ops,
            "loading_reads": self.loading_reads,
            "read_sites": dict(self.read_sites),
            "syncing_ops": dict(self.syncing_ops),
        }


def _caller() -> str:
    """The first frame outside torch and this file: who asked for the value."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = frame.filename.replace(os.sep, "/")
        if "/torch/" in path or path.endswith("step_overhead.py"):
            continue
        short = "/".join(path.split("/")[-2:])
        return f"{short}:{frame.lineno} ({frame.name})"
    return "?"


def _probe_child(args: argparse.Namespace) -> None:
    """Run the script after ``--`` with the probe on; write counts per step to the report."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    probe = _Probe()

    class CountOps(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            if probe.loading:
                probe.loading_ops += 1
            else:
                probe.ops += 1
            name = f"aten::{func._schema.name.split('::')[-1]}"
            if name in SYNCING_OPS:
                probe.syncing_ops[name] += 1
                if name != "aten::_local_scalar_dense":  # item() & co. are counted below
                    probe.read(name)
            return func(*args, **(kwargs or {}))

    for method in HOST_READ_METHODS:
        original = getattr(torch.Tensor, method)

        def counted(tensor: Any, *a: Any, _original: Any = original, _m: str = method, **k: Any):
            probe.read(f"Tensor.{_m}")
            return _original(tensor, *a, **k)

        setattr(torch.Tensor, method, counted)

    from torch.utils.data._utils import fetch

    original_fetch = fetch._MapDatasetFetcher.fetch

    def fetching(self: Any, *a: Any, **k: Any) -> Any:
        probe.loading = True
        try:
            return original_fetch(self, *a, **k)
        finally:
            probe.loading = False

    fetch._MapDatasetFetcher.fetch = fetching  # type: ignore[method-assign]

    if args.as_cuda:
        from lfm.runtime import packing

        packing._cuda_available = lambda: True  # pick the GPU's packed attention

    import transformers

    marks: dict[int, dict[str, Any]] = {}

    class Marks(transformers.TrainerCallback):
        def on_step_end(self, targs: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks[state.global_step] = probe.snapshot()

    original_init = transformers.Trainer.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:
        original_init(self, *a, **k)
        self.add_callback(Marks())

    transformers.Trainer.__init__ = init  # type: ignore[method-assign]
    sys.argv = args.script
    mode = CountOps()
    mode.__enter__()
    try:
        runpy.run_path(args.script[0], run_name="__main__")
    finally:
        mode.__exit__(None, None, None)
    first, last = marks[WARMUP_STEPS], marks[max(marks)]
    steps = max(marks) - WARMUP_STEPS
    sites = collections.Counter(last["read_sites"]) - collections.Counter(first["read_sites"])
    syncing = collections.Counter(last["syncing_ops"]) - collections.Counter(first["syncing_ops"])
    report = {
        "steps": steps,
        "ops_per_step": round((last["ops"] - first["ops"]) / steps, 1),
        "host_reads_per_step": round((last["host_reads"] - first["host_reads"]) / steps, 2),
        "data_loading_ops_per_step": round((last["loading_ops"] - first["loading_ops"]) / steps, 1),
        "data_loading_reads_per_step": round(
            (last["loading_reads"] - first["loading_reads"]) / steps, 2
        ),
        "syncing_ops": dict(syncing),
        "host_read_sites": dict(sites.most_common()),
    }
    Path(args.child).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--as-cuda", action="store_true", help="lfm picks the GPU's attention")
    parser.add_argument("--methods", nargs="+", choices=["lora", "full"], default=["lora", "full"])
    parser.add_argument("--shape", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--steps", type=int, default=22)
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--out")
    parser.add_argument("--child", metavar="REPORT", help=argparse.SUPPRESS)
    parser.add_argument("script", nargs="*", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
