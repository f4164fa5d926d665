"""Serving throughput: `lfm serve` with one and four LoRA adapters in the traffic, and its peers.

On a real model (SmolLM2-135M-Instruct: `lfm dev real-model DIR` makes the folder), with four
LoRA adapters built on it here (r=8 on q_proj and v_proj, random weights from different seeds,
so that each answers differently; no training needed). Closed-loop clients (each sends its next
request as soon as its last is answered) at each concurrency send chat completions with short
prompts, max_tokens=32 and temperature 0, naming either always ``a0`` (one adapter) or
``a0``..``a3`` in turn (four adapters in the mix). Each cell records requests/s, generated
tokens/s, and the p50 and p95 latency.

Side by side in the same run, the same prompts and max_tokens:

- ``lfm_serve``: a real `lfm serve MODEL --adapter a0=... --adapter a3=...` process.
- ``plain_loop``: one request at a time through transformers' ``generate`` on a PeftModel
  holding the four adapters (``set_adapter`` per request). Sequential, so its throughput is the
  same at every concurrency: measured once per adapter setting.
- ``transformers_serve``: transformers' own `transformers serve --continuous-batching`, if it
  runs here. It serves no LoRA adapters, so each adapter is merged into a model folder of its
  own, and a request names its folder (transformers serve runs one process per model).

The servers run at once, idle but for the cell being measured, and each cell is measured on
both servers in turn, alternating which goes first: the machine may be shared, and a neighbour's
load then hits both alike. The load average is recorded before and after each part. Every
process runs with ``--threads`` CPU threads (1 by default: see main()).

    python benchmarks/serve.py MODEL_DIR             # the full run, under ~10 minutes on 2 cores
    python benchmarks/serve.py MODEL_DIR --quick     # about 3 minutes: does it all work?

Writes benchmarks/results/serve.json and serve.md (or --out and the .md beside it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serve.json"
ADAPTERS = [f"a{i}" for i in range(4)]
SETTINGS = {"1 adapter": ADAPTERS[:1], "4 adapters": ADAPTERS}
# Short questions with short answers: the benchmark is about serving, not long generations.
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give me three tips for better sleep.",
    "What is 17 times 23?",
    "Explain what a LoRA adapter is in one sentence.",
    "Name a famous painting by Vermeer.",
]
MAX_TOKENS = 32
GOAL_MIXED = 0.8  # mixed-adapter traffic keeps at least this share of single-adapter throughput


@dataclass(frozen=True)
class Answer:
    """One request, as a client saw it."""

    start: float
    end: float
    tokens: int  # generated (the end-of-sequence token not counted)
    text: str


# ---- the plan ----------------------------------------------------------------------------------


def plan(count: int, adapters: list[str]) -> list[tuple[str, str]]:
    """(prompt, adapter) for each request: adapters in turn, and every prompt with every adapter
    (the prompt advances once per cycle of adapters)."""
    return [
        (PROMPTS[(i // len(adapters)) % len(PROMPTS)], adapters[i % len(adapters)])
        for i in range(count)
    ]


def cell_size(args: argparse.Namespace, concurrency: int) -> int:
    """Enough requests that every client sends ``--rounds`` of them, and at least ``--requests``;
    then up to a whole number of (prompt, adapter) cycles, so that both adapter settings ask
    every prompt equally often: the same questions, only the adapters differ (--quick skips
    that: its numbers only show that everything runs)."""
    wanted = max(args.requests, args.rounds * concurrency)
    cycle = 1 if args.quick else len(PROMPTS) * len(ADAPTERS)
    return -(-wanted // cycle) * cycle


def summarize(answers: list[Answer]) -> dict[str, Any]:
    wall = max(a.end for a in answers) - min(a.start for a in answers)
    latencies = sorted(a.end - a.start for a in answers)
    tokens = sum(a.tokens for a in answers)
    return {
        "requests": len(answers),
        "seconds": round(wall, 2),
        "requests_per_s": round(len(answers) / wall, 3),
        "tokens_per_s": round(tokens / wall, 2),
        "mean_tokens": round(tokens / len(answers), 1),
        "p50_s": round(_percentile(latencies, 0.50), 3),
        "p95_s": round(_percentile(latencies, 0.95), 3),
    }


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---- adapters ----------------------------------------------------------------------------------


def build_adapters(model: Path, root: Path) -> dict[str, Path]:
    """Four LoRA adapters of ``model``, random (init_lora_weights=False) from different seeds."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = {}
    for seed, name in enumerate(ADAPTERS):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
        config = LoraConfig(
            task_type="CAUSAL_LM",
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "v_proj"],
            init_lora_weights=False,
        )
        folders[name] = root / name
        get_peft_model(base, config).save_pretrained(str(folders[name]))
    return folders


def merge_adapters(model: Path, adapters: dict[str, Path], root: Path) -> dict[str, Path]:
    """Each adapter merged into a model folder of its own (with the tokenizer and its chat
    template): how a server without LoRA support serves fine-tunes."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    folders = {}
    for name, adapter in adapters.items():
        base = AutoModelForCausalLM.from_pretrained(str(model))
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        folders[name] = root / name
        merged.save_pretrained(str(folders[name]))
        tokenizer.save_pretrained(str(folders[name]))
    return folders


# ---- the plain loop ----------------------------------------------------------------------------


def plain_loop(
    model: Path, adapters: dict[str, Path], requests: list[tuple[str, str]], device: str
) -> list[Answer]:
    """One request at a time: chat template, ``generate``, decode, as a simple script does."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    base = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype).to(device)
    lora = PeftModel.from_pretrained(base, str(adapters["a0"]), adapter_name="a0")
    for name in ADAPTERS[1:]:
        lora.load_adapter(str(adapters[name]), adapter_name=name)
    lora.eval()
    config = lora.generation_config
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    stops = {i for i in [*eos, tokenizer.eos_token_id] if i is not None}

    def answer(prompt: str, adapter: str) -> Answer:
        start = time.perf_counter()
        lora.set_adapter(adapter)
        # The chat template as the servers apply it: the text, then its tokens as they are.
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt").to(device)
        with torch.inference_mode():
            output = lora.generate(
                **inputs,
                max_new_tokens=MAX_TOKENS,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = output[0, inputs["input_ids"].shape[1] :].tolist()
        end = next((i for i, token in enumerate(new) if token in stops), len(new))
        reply = tokenizer.decode(new[:end], skip_special_tokens=True)
        return Answer(start, time.perf_counter(), end, reply)

    for name in ADAPTERS:  # warm up: the first call of each adapter pays one-time costs
        answer(PROMPTS[0], name)
    return [answer(prompt, adapter) for prompt, adapter in requests]


# ---- servers and clients -----------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str  # http://127.0.0.1:PORT
    model_of: Callable[[str], str]  # adapter name -> the request's `model` field
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(command: list[str], ready: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    """``command`` in a session of its own (it may start children: transformers serve runs one
    process per model) until the block ends; waits for ``ready`` to answer 200 first."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"exited {process.returncode}: {_tail(log)}")
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2) as reply:
                if reply.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready in 300s: {_tail(log)}")
            time.sleep(0.3)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(
                process.pid, signal.SIGTERM
            )  # the group we started: the server and its children
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _tail(log: Path, lines: int = 15) -> str:
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def load(server: Server, requests: list[tuple[str, str]], concurrency: int) -> list[Answer]:
    """``concurrency`` clients, each sending its next request when its last is answered."""

    def send(item: tuple[str, str]) -> Answer:
        prompt, adapter = item
        body = {
            "model": server.model_of(adapter),
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
        }
        request = urllib.request.Request(
            f"{server.url}/v1/chat/completions",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 (loopback)
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{server.name}: {exc.code} {exc.read()[:300]!r}") from None
        end = time.perf_counter()
        text = reply["choices"][0]["message"]["content"] or ""
        return Answer(start, end, int(reply["usage"]["completion_tokens"]), text)

    with ThreadPoolExecutor(max_workers=concurrency) as clients:
        return list(clients.map(send, requests))


# ---- the run -----------------------------------------------------------------------------------


def main() -> None:
    args = _parse()
    model = Path(args.model).expanduser().resolve()
    if not (model / "config.json").is_file():
        sys.exit(
            f"{args.model} holds no model (config.json): make it with "
            f"`lfm dev real-model {args.model}` (SmolLM2-135M-Instruct), then run this again"
        )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if args.threads:
        # The same CPU threads for every arm; one by default, as in train_throughput.py: on a
        # shared machine an OpenMP thread waiting for a busy core stalls every operation (beside
        # one busy process, a request to `lfm serve` on 2 cores took 4-10s instead of 0.7s).
        env["OMP_NUM_THREADS"] = str(args.threads)
    os.environ.update({k: v for k, v in env.items() if k.endswith(("_OFFLINE", "_THREADS"))})
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()
    loads = {"start": _loadavg()}
    with tempfile.TemporaryDirectory(prefix="lfm-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        adapters = build_adapters(model, tmp / "adapters")
        loads["adapters built"] = _loadavg()

        # The plain loop first, while no server is up (nothing else of ours holds the CPU).
        loop: dict[str, dict[str, Any]] = {}
        loop_answers: dict[str, list[Answer]] = {}
        for setting, names in SETTINGS.items():
            requests = plan(cell_size(args, 1), names)
            loop_answers[setting] = plain_loop(model, adapters, requests, device)
            loop[setting] = summarize(loop_answers[setting])
            print(f"plain_loop          {setting:10}      {_line(loop[setting])}", flush=True)
        loads["plain loop"] = _loadavg()

        peer, why_not = _transformers_serve(args, model, adapters, tmp, env)
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(_lfm_serve(model, adapters, tmp, env))]
            if peer is not None:
                try:
                    servers.append(stack.enter_context(peer))
                except RuntimeError as exc:
                    why_not = f"`transformers serve` did not start: {exc}"
            loads["servers up"] = _loadavg()
            cells, answers, why_not = _measure(args, servers, why_not)
        loads["end"] = _loadavg()

    report = _report(args, model, device, started, loads, loop, cells, why_not)
    report["checks"] = _checks(loop_answers, {k: v for k, v in answers.items() if k in cells})
    out = Path(args.out) if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    markdown = _markdown(report)
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print()
    print(markdown)
    print(f"wrote {out} and {out.with_suffix('.md').name} ({report['meta']['duration_s']:.0f}s)")


@contextlib.contextmanager
def _lfm_serve(
    model: Path, adapters: dict[str, Path], tmp: Path, env: dict[str, str]
) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "lfm.cli", "serve", str(model), "--port", str(port)]
    for name, folder in adapters.items():
        command += ["--adapter", f"{name}={folder}"]
    url, log = f"http://127.0.0.1:{port}", tmp / "lfm-serve.log"
    with running(command, f"{url}/ready", log, env):
        yield Server("lfm_serve", url, lambda adapter: adapter, log)


def _transformers_serve(
    args: argparse.Namespace,
    model: Path,
    adapters: dict[str, Path],
    tmp: Path,
    env: dict[str, str],
) -> tuple[contextlib.AbstractContextManager[Server] | None, str | None]:
    """`transformers serve` on merged copies of the adapters, or why it cannot run here."""
    if args.no_transformers_serve:
        return None, "skipped (--no-transformers-serve)"
    beside = Path(sys.executable).with_name("transformers")
    cli = str(beside) if beside.is_file() else shutil.which("transformers")
    if cli is None:
        return None, "no `transformers` command here (older transformers have no `serve`)"
    probe = subprocess.run(
        [cli, "serve", "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        return None, f"`transformers serve --help` failed: {(probe.stderr or probe.stdout)[-500:]}"
    merged = merge_adapters(model, adapters, tmp / "merged")
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", tmp / "transformers-serve.log"
    # No pinned model: a request names its adapter's merged folder, loaded on first use, kept.
    command = [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--model-timeout", "-1"]
    command += ["--log-level", "warning", *_continuous_batching(max(args.concurrency))]

    @contextlib.contextmanager
    def serve() -> Iterator[Server]:
        with running(command, f"{url}/health", log, env):
            yield Server("transformers_serve", url, lambda adapter: str(merged[adapter]), log)

    return serve(), None


def _continuous_batching(concurrency: int) -> list[str]:
    """Continuous batching, with a KV cache sized for this load. Left to itself, each model's
    process sizes its cache from the free memory (60% of it on a CPU): the second model's process
    then runs the machine out of memory, and the kernel kills one of them."""
    tokens = concurrency * (64 + MAX_TOKENS)  # the chat template's prompts are under 64 tokens
    blocks = max(16, -(-tokens // 256))  # blocks of 256 tokens, transformers' default page
    return [
        "--continuous-batching",
        "--cb-num-blocks",
        str(blocks),
        "--cb-max-batch-tokens",
        str(max(1024, tokens)),
    ]


def _measure(
    args: argparse.Namespace, servers: list[Server], why_not: str | None
) -> tuple[dict[str, Any], dict[str, dict[str, list[Answer]]], str | None]:
    """Every (adapters, concurrency) cell on every server, alternating which goes first."""
    cells: dict[str, Any] = {server.name: {} for server in servers}
    answers: dict[str, dict[str, list[Answer]]] = {server.name: {} for server in servers}
    turn = 0
    for setting, names in SETTINGS.items():
        for server in list(servers):
            try:  # warm up: each adapter once, then a full round at the highest concurrency
                load(server, plan(len(names), names), 1)
                load(server, plan(max(args.concurrency), names), max(args.concurrency))
            except Exception as exc:
                servers, why_not = _drop(servers, server, exc, cells)
        for concurrency in args.concurrency:
            requests = plan(cell_size(args, concurrency), names)
            order = servers if turn % 2 == 0 else list(reversed(servers))
            turn += 1
            for server in order:
                try:
                    got = load(server, requests, concurrency)
                except Exception as exc:
                    servers, why_not = _drop(servers, server, exc, cells)
                    continue
                cell = summarize(got)
                cells[server.name].setdefault(setting, {})[str(concurrency)] = cell
                if concurrency == 1:
                    answers[server.name][setting] = got
                print(f"{server.name:19} {setting:10} c={concurrency:<3} {_line(cell)}", flush=True)
    return cells, answers, why_not


def _drop(
    servers: list[Server], server: Server, exc: Exception, cells: dict[str, Any]
) -> tuple[list[Server], str]:
    """A peer that fails mid-run is reported with why; lfm failing fails the benchmark."""
    if server.name == "lfm_serve":
        raise exc
    cells.pop(server.name, None)
    why = f"`transformers serve` failed: {exc}; its log: {_tail(server.log)}"
    return [s for s in servers if s is not server], why


def _checks(
    loop_answers: dict[str, list[Answer]], answers: dict[str, dict[str, list[Answer]]]
) -> dict[str, Any]:
    """Sanity: the adapters answer differently, and each server gives the plain loop's greedy
    answers at concurrency 1 (same requests in the same order)."""
    # The plan's first len(ADAPTERS) requests ask every adapter the first prompt.
    first = {answer.text for answer in loop_answers["4 adapters"][: len(ADAPTERS)]}
    checks: dict[str, Any] = {"distinct_answers_of_4_adapters_to_one_prompt": len(first)}
    for name, settings in answers.items():
        same = total = 0
        for setting, got in settings.items():
            for theirs, ours in zip(loop_answers[setting], got, strict=False):
                same += theirs.text.strip() == ours.text.strip()
                total += 1
        checks[f"{name}_same_answers_as_plain_loop_at_concurrency_1"] = f"{same}/{total}"
    return checks


def _report(
    args: argparse.Namespace,
    model: Path,
    device: str,
    started: float,
    loads: dict[str, list[float]],
    loop: dict[str, dict[str, Any]],
    cells: dict[str, Any],
    why_not: str | None,
) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    marker = model / "lfm-real-model.json"
    name = json.loads(marker.read_text())["model"] if marker.is_file() else model.name
    results: dict[str, Any] = {"plain_loop": loop, **cells}
    if "transformers_serve" not in cells:
        results["transformers_serve"] = {"not_measured": why_not}
    lfm = cells["lfm_serve"]
    levels = [str(c) for c in args.concurrency]
    ratios: dict[str, Any] = {
        "mixed_over_single_adapter_requests_per_s": {
            c: round(
                lfm["4 adapters"][c]["requests_per_s"] / lfm["1 adapter"][c]["requests_per_s"], 2
            )
            for c in levels
        },
        "mixed_over_single_adapter": {
            c: round(lfm["4 adapters"][c]["tokens_per_s"] / lfm["1 adapter"][c]["tokens_per_s"], 2)
            for c in levels
        },
        "lfm_over_plain_loop": {
            setting: {
                c: round(lfm[setting][c]["tokens_per_s"] / loop[setting]["tokens_per_s"], 2)
                for c in levels
            }
            for setting in SETTINGS
        },
    }
    if "transformers_serve" in cells:
        peer = cells["transformers_serve"]
        ratios["lfm_over_transformers_serve"] = {
            setting: {
                c: round(lfm[setting][c]["tokens_per_s"] / peer[setting][c]["tokens_per_s"], 2)
                for c in levels
                if c in peer.get(setting, {})
            }
            for setting in SETTINGS
        }
    goals = {
        f"mixed >= {GOAL_MIXED}x single-adapter throughput": {
            c: ratio >= GOAL_MIXED for c, ratio in ratios["mixed_over_single_adapter"].items()
        },
        "ahead of the plain loop at concurrency >= 4": {
            f"{setting}, c={c}": ratio > 1
            for setting, by_level in ratios["lfm_over_plain_loop"].items()
            for c, ratio in by_level.items()
            if int(c) >= 4
        },
    }
    return {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": _cpus(),
            "device": device,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "load_average_1_5_15": loads,
            "duration_s": round(time.time() - started, 1),
            "note": "a shared machine: other work may run at once (see the load averages)",
        },
        "settings": {
            "model": name,
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
            "prompts": PROMPTS,
            "adapters": "4 LoRA, r=8, alpha=16, q_proj+v_proj, init_lora_weights=False, seeds 0-3",
            "concurrency": args.concurrency,
            "requests_per_cell": {str(c): cell_size(args, c) for c in args.concurrency},
            "plain_loop_requests": cell_size(args, 1),
            "quick": args.quick,
            "threads_per_process": args.threads or "torch's default",
            "transformers_serve": " ".join(_continuous_batching(max(args.concurrency)))
            + ", each adapter merged into a model of its own, one process per model",
        },
        "results": results,
        "ratios_tokens_per_s": ratios,
        "goals": goals,
    }


def _markdown(report: dict[str, Any]) -> str:
    meta, settings, results = report["meta"], report["settings"], report["results"]
    ratios = report["ratios_tokens_per_s"]
    lines = [
        f"# Serving throughput: {settings['model']}",
        "",
        f"{meta['cpus']} CPUs ({meta['device']}), torch {meta['torch']}, transformers "
        f"{meta['transformers']}, peft {meta['peft']}; max_tokens {settings['max_tokens']}, "
        f"temperature 0; requests per cell {settings['requests_per_cell']}; CPU threads per "
        f"process: {settings['threads_per_process']}; "
        f"{meta['duration_s']:.0f}s in all{' (--quick)' if settings['quick'] else ''}.",
        "",
        "| server | adapters | concurrency | requests | tokens/request | req/s | tokens/s "
        "| p50 s | p95 s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setting in SETTINGS:
        cell = results["plain_loop"][setting]
        lines.append(f"| plain loop | {setting} | 1 (any) | {_row(cell)} |")
    for name in ("lfm_serve", "transformers_serve"):
        for setting, by_level in results[name].items():
            if setting == "not_measured":
                continue
            for level, cell in by_level.items():
                lines.append(f"| {name.replace('_', ' ')} | {setting} | {level} | {_row(cell)} |")
    lines += [
        "",
        "Ratios of generated tokens/s (the random adapters answer at different lengths, so "
        "tokens/s compares the work done; the requests/s ratio of 4 adapters to 1 is in "
        "brackets):",
        "",
        "| concurrency | lfm 4 adapters / 1 adapter | lfm / plain loop (1 adapter) "
        "| lfm / plain loop (4 adapters) | lfm / transformers serve (1 adapter) "
        "| lfm / transformers serve (4 adapters) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    peer = ratios.get("lfm_over_transformers_serve", {})
    for level, mixed in ratios["mixed_over_single_adapter"].items():
        cells = [
            f"{mixed} ({ratios['mixed_over_single_adapter_requests_per_s'][level]})",
            ratios["lfm_over_plain_loop"]["1 adapter"][level],
            ratios["lfm_over_plain_loop"]["4 adapters"][level],
            *(peer.get(setting, {}).get(level, "n/a") for setting in SETTINGS),
        ]
        lines.append(f"| {level} | " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Goals:", ""]
    for goal, met in report["goals"].items():
        verdict = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in met.items())
        lines.append(f"- {goal}: {verdict}")
    if "not_measured" in results["transformers_serve"]:
        lines.append(
            f"- transformers serve not measured: {results['transformers_serve']['not_measured']}"
        )
    lines += ["", "Checks: " + "; ".join(f"{k} {v}" for k, v in report["checks"].items())]
    lines += [
        "",
        f"Load average (1, 5, 15 min) on a shared machine: {meta['load_average_1_5_15']}",
        "",
        f"transformers serve ran as {settings['transformers_serve']} (it serves no LoRA adapters).",
        "",
    ]
    return "\n".join(lines)


def _row(cell: dict[str, Any]) -> str:
    keys = ("requests", "mean_tokens", "requests_per_s", "tokens_per_s", "p50_s", "p95_s")
    return " | ".join(str(cell[key]) for key in keys)


def _line(cell: dict[str, Any]) -> str:
    return (
        f"{cell['requests']:4} req {cell['requests_per_s']:7.2f} req/s "
        f"{cell['tokens_per_s']:8.1f} tok/s p50 {cell['p50_s']:6.2f}s p95 {cell['p95_s']:6.2f}s"
    )


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model", help="the model folder (`lfm dev real-model DIR` makes one)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4, 16], help="clients (default 1 4 16)"
    )
    parser.add_argument(
        "--requests", type=int, default=24, help="requests per cell, at least (default 24)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="requests per client, at least: a cell sends max(--requests, rounds x clients), "
        "rounded up to a multiple of 24 (6 prompts x 4 adapters) (default 4)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: --requests 4 --rounds 1")
    parser.add_argument(
        "--no-transformers-serve", action="store_true", help="leave transformers serve out"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads per arm (0: torch's default)"
    )
    parser.add_argument("--out", help=f"the JSON file (default {RESULTS.relative_to(HERE.parent)})")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 4, 1
    args.concurrency = sorted(set(args.concurrency))
    return args


if __name__ == "__main__":
    main()
