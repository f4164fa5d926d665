"""Measurement probe for peer trainers (on PYTHONPATH only in benchmark child processes).

When transformers' trainer module loads, wrap ``Trainer.compute_loss`` to count the real
(attention mask non-zero; packed masks number their sequences 1, 2, ...) and total tokens of
training batches, and ``Trainer.train`` to time it; write both to $LFM_BENCH_PROBE_OUT.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import statistics
import sys
import time

OUT = os.environ.get("LFM_BENCH_PROBE_OUT")
COUNTS = {"real": 0, "total": 0}


def _patch(module) -> None:
    trainer = module.Trainer
    compute_loss, train = trainer.compute_loss, trainer.train

    def counting_compute_loss(self, model, inputs, *args, **kwargs):
        if model.training and "input_ids" in inputs:
            ids = inputs["input_ids"]
            mask = inputs.get("attention_mask")
            COUNTS["total"] += int(ids.numel())
            COUNTS["real"] += (
                int((mask != 0).sum()) if mask is not None and mask.dim() == 2 else int(ids.numel())
            )
        return compute_loss(self, model, inputs, *args, **kwargs)

    def timed_train(self, *args, **kwargs):
        start = time.perf_counter()
        result = train(self, *args, **kwargs)
        runtime = result.metrics.get("train_runtime", time.perf_counter() - start)
        losses = [e["loss"] for e in self.state.log_history if "loss" in e]
        last = max(1, 10 // max(1, self.args.logging_steps))
        gpu = None
        try:
            import torch

            if torch.cuda.is_available():
                gpu = torch.cuda.max_memory_allocated() / 2**20
        except ImportError:
            pass
        if OUT and self.is_world_process_zero():
            with open(OUT, "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "train_runtime": runtime,
                        "real_tokens": COUNTS["real"],
                        "total_tokens": COUNTS["total"],
                        # The mean over the last 10 steps (each log averages logging_steps).
                        "final_loss": statistics.mean(losses[-last:]) if losses else None,
                        "gpu_peak_mb": gpu,
                    },
                    handle,
                )
        return result

    trainer.compute_loss = counting_compute_loss
    trainer.train = timed_train


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "transformers.trainer":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _patch(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if OUT:
    sys.meta_path.insert(0, _Finder())
