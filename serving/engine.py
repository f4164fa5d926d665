"""The generation engine: one base model, many LoRA adapters, requests batched across adapters.

One thread owns the model. It decodes the requests together, whatever adapter each asked for:
peft's mixed-adapter batches (``adapter_names=``, one name per row, ``__base__`` for the base
model) apply each row's own LoRA inside the same forward pass. Each row samples with its own
settings and stops on its own (end of sequence, a stop string, ``max_tokens``, or its client
gone); a finished row leaves the KV cache at once (``DynamicCache.batch_select_indices``).
Batching is continuous: between two steps, requests that arrived read their prompts together
and join the running batch (caches and masks left-padded to one length), up to ``max_batch``
rows, so nobody waits for a long answer to end.

Adapters are loaded and deleted by the same thread, between batches, so a forward pass never
sees the model change (see :mod:`lfm.serving.adapters` for the names, versions and drain).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger("lfm.serving")

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Job:
    """One request: its prompt, which adapter (internal name, or None for the base), how to
    sample, and where its events go (called on the engine thread; must not block)."""

    prompt_ids: list[int]
    adapter: str | None
    sampling: Sampling
    emit: Callable[[Event], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Event:
    kind: str  # "text" (a piece of the answer), "done" or "error"
    text: str = ""
    finish_reason: str | None = None  # "stop" | "length" (done)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Row:
    """A job inside a batch: what it generated, its text so far, and how much was sent.

    The text grows by decoding a short window of tokens (vLLM's and TGI's way), not the whole
    answer at every step: the cost per token stays flat, and a character split over tokens
    appears once complete.
    """

    def __init__(self, job: Job, tokenizer: Any, stop_ids: set[int]) -> None:
        self.job = job
        self.tokenizer = tokenizer
        self.stop_ids = stop_ids
        self.generated: list[int] = []
        self.text = ""
        self.sent = 0  # characters of the text already emitted
        self._prefix = 0  # the window: tokens [prefix, read) are decoded into text already
        self._read = 0
        self.generator: torch.Generator | None = None

    def step(self, token: int) -> str | None:
        """Take one token; the finish reason once this row is done, else None."""
        sampling = self.job.sampling
        if token in self.stop_ids:
            self._flush(self._whole_text())
            return "stop"
        self.generated.append(token)
        self.text += self._new_text()
        hit = _first_stop(self.text, sampling.stop, self.sent)
        if hit is not None:
            self._flush(self.text[:hit])
            return "stop"
        if len(self.generated) >= sampling.max_tokens:
            self._flush(self._whole_text())
            return "length"
        # Hold back a tail that may be the start of a stop string.
        self._flush(self.text[: len(self.text) - _partial_stop(self.text, sampling.stop)])
        return None

    def _whole_text(self) -> str:
        """The text at the end, with a last character cut short decoded as it is (the same
        text as decoding every token at once)."""
        return self.text + self._new_text(complete=False)

    def _new_text(self, complete: bool = True) -> str:
        def decode(ids: list[int]) -> str:
            return self.tokenizer.decode(
                ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
            )

        before = decode(self.generated[self._prefix : self._read])
        after = decode(self.generated[self._prefix :])
        if len(after) <= len(before) or (complete and after.endswith("\ufffd")):
            return ""  # nothing yet, or half a character: wait for the next token
        self._prefix, self._read = self._read, len(self.generated)
        return after[len(before) :]

    def _flush(self, text: str) -> None:
        if len(text) > self.sent:
            self.job.emit(Event("text", text[self.sent :]))
            self.sent = len(text)

    def finish(self, reason: str) -> None:
        self.job.emit(
            Event(
                "done",
                finish_reason=reason,
                prompt_tokens=len(self.job.prompt_ids),
                completion_tokens=len(self.generated),
            )
        )


def _first_stop(text: str, stops: tuple[str, ...], sent: int) -> int | None:
    """Where the earliest stop string starts in ``text`` (searching what may hold a new one)."""
    longest = max((len(s) for s in stops), default=0)
    start = max(0, sent - longest)
    found = [i for s in stops if (i := text.find(s, start)) != -1]
    return min(found) if found else None


def _partial_stop(text: str, stops: tuple[str, ...]) -> int:
    """How many final characters of ``text`` could be the beginning of a stop string."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:size]):
                best = size
                break
    return best


class Engine:
    """Runs :class:`Job` s on ``model`` in batches, on its own thread."""

    def __init__(self, model: Any, tokenizer: Any, *, max_batch: int = 16) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.device = next(model.parameters()).device
        self.stop_ids = _stop_ids(model, tokenizer)
        parameters = inspect.signature(model.forward).parameters
        # The KV cache's name in forward() and its output: transformers 5.x renames
        # past_key_values to cache; either release works.
        self.cache_argument = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are sampled: not [batch, prompt, vocab] of them.
        self.logits_option = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._wake = threading.Event()
        self._closed = False
        self.joined = 0  # requests that joined a running batch (continuous batching at work)
        self._thread = threading.Thread(target=self._run, name="lfm-engine", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def waiting(self) -> int:
        return self._jobs.qsize()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)
        self._wake.set()

    def call(self, function: Callable[[], Any]) -> Future[Any]:
        """Run ``function`` on the engine thread between batches (loading or deleting an
        adapter changes the model: never under a forward pass)."""
        future: Future[Any] = Future()
        self._calls.put((function, future))
        self._wake.set()
        return future

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)

    # ---- the engine thread -------------------------------------------------------------------

    def _run(self) -> None:
        batch: _Batch | None = None
        while not self._closed:
            if batch is None:
                self._wake.wait(timeout=0.5)
                self._wake.clear()
            # Adapter loads and drained deletes run between steps: a forward pass never sees
            # the model change, and a batch that never empties does not hold them off.
            self._run_calls()
            room = self.max_batch - (len(batch.rows) if batch else 0)
            if batch is None or (batch.joinable and room > 0):
                jobs = self._take(room)
                if jobs:
                    fresh = self._guarded(jobs, self._prefill, jobs)
                    if batch and fresh:
                        batch = _join(batch, fresh)
                        self.joined += len(fresh.rows)
                    else:
                        batch = batch or fresh
            if batch is not None:
                batch = self._guarded([r.job for r in batch.rows], self._step, batch)

    def _guarded(
        self, jobs: list[Job], work: Callable[[Any], _Batch | None], argument: Any
    ) -> _Batch | None:
        """One failed forward pass fails its requests, not the server."""
        try:
            return work(argument)
        except Exception as exc:
            logger.exception("generation failed")
            for job in jobs:
                job.emit(Event("error", text=f"generation failed: {exc}"))
            return None

    def _run_calls(self) -> None:
        while True:
            try:
                function, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the caller, who reports it
                future.set_exception(exc)

    def _take(self, room: int) -> list[Job]:
        jobs: list[Job] = []
        while len(jobs) < room:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if not job.cancelled.is_set():
                jobs.append(job)
        return jobs

    @torch.inference_mode()
    def _prefill(self, jobs: list[Job]) -> _Batch | None:
        """Read the new requests' prompts (left-padded together) and sample their first token."""
        width = max(len(job.prompt_ids) for job in jobs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        # Left padding: every row's next token is at the same (last) column.
        ids = torch.tensor([[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in jobs])
        mask = torch.tensor(
            [[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in jobs]
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        rows = [_Row(job, self.tokenizer, self.stop_ids) for job in jobs]
        adapters = [job.adapter or BASE for job in jobs]
        cache, tokens = self._forward(rows, adapters, ids, mask, positions, None)
        batch = _Batch(rows, adapters, cache, mask, positions[:, -1:], tokens, _joinable(cache))
        return batch.advance()

    @torch.inference_mode()
    def _step(self, batch: _Batch) -> _Batch | None:
        """Feed each row its last token; sample the next."""
        mask = torch.cat([batch.mask, torch.ones(len(batch.rows), 1, dtype=batch.mask.dtype)], -1)
        positions = batch.positions + 1
        ids = torch.tensor(batch.tokens).unsqueeze(-1)
        cache, tokens = self._forward(batch.rows, batch.adapters, ids, mask, positions, batch.cache)
        stepped = _Batch(batch.rows, batch.adapters, cache, mask, positions, tokens, batch.joinable)
        return stepped.advance()

    def _forward(
        self,
        rows: list[_Row],
        adapters: list[str],
        ids: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: Any,
    ) -> tuple[Any, list[int]]:
        context, adapter_option = self._adapters_for(adapters)
        with context:
            output = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=True,
                **{self.cache_argument: cache},
                **self.logits_option,
                **adapter_option,
            )
        tokens = [_sample_row(output.logits[i, -1], row) for i, row in enumerate(rows)]
        return output[self.cache_argument], tokens

    def _adapters_for(self, adapters: list[str]) -> tuple[AbstractContextManager[Any], dict[str, Any]]:  # fmt: skip
        """How this step applies its rows' adapters: a mixed batch names one per row; a batch
        of one adapter activates it instead (peft's per-row hooks cost ~10% of a step)."""
        model = self.model
        if not hasattr(model, "peft_config"):
            return contextlib.nullcontext(), {}  # no adapter was ever loaded: the plain base
        names = set(adapters)
        if len(names) > 1:
            return contextlib.nullcontext(), {"adapter_names": adapters}
        (only,) = names
        if only == BASE:
            return model.disable_adapter(), {}
        if model.active_adapter != only:
            model.set_adapter(only)
        return contextlib.nullcontext(), {}


@dataclass
class _Batch:
    """The rows decoding together: their KV cache, attention mask (one column per cached
    position, 0 for left padding), the position and the token each feeds next."""

    rows: list[_Row]
    adapters: list[str]  # one per row: an internal adapter name, or BASE
    cache: Any
    mask: torch.Tensor  # [rows, cached positions]
    positions: torch.Tensor  # [rows, 1]: the position of each row's last token fed
    tokens: list[int]  # each row's newest token, fed at the next step
    joinable: bool  # new rows may join (a cache of plain layers that left padding can align)

    def advance(self) -> _Batch | None:
        """Give each row its newest token; the finished and the cancelled leave the batch (and
        its cache) at once. None when no row is left."""
        keep = []
        for i, (row, token) in enumerate(zip(self.rows, self.tokens, strict=True)):
            if row.job.cancelled.is_set():
                continue
            reason = row.step(token)
            if reason is None:
                keep.append(i)
            else:
                row.finish(reason)
        if not keep:
            return None
        if len(keep) < len(self.rows):
            self.cache.batch_select_indices(torch.tensor(keep, device=self.mask.device))
            self.rows = [self.rows[i] for i in keep]
            self.adapters = [self.adapters[i] for i in keep]
            self.tokens = [self.tokens[i] for i in keep]
            self.mask, self.positions = self.mask[keep], self.positions[keep]
        return self


def _joinable(cache: Any) -> bool:
    """Rows of another batch can be padded into this cache only when every layer is a plain
    (full attention) layer: a sliding window or a recurrent state cannot be left-padded."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _join(running: _Batch, fresh: _Batch) -> _Batch:
    """``fresh`` rows into ``running``: both caches and masks left-padded to one length."""
    width = max(running.mask.shape[1], fresh.mask.shape[1])
    for mine, theirs in zip(running.cache.layers, fresh.cache.layers, strict=True):
        mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
        mine.values = torch.cat(
            [_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)]
        )
    running.mask = torch.cat([_pad_left(running.mask, width, 1), _pad_left(fresh.mask, width, 1)])
    running.positions = torch.cat([running.positions, fresh.positions])
    running.rows += fresh.rows
    running.adapters += fresh.adapters
    running.tokens += fresh.tokens
    return running


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _sample_row(logits: torch.Tensor, row: _Row) -> int:
    """The row's next token; a row whose logits cannot be sampled fails alone and leaves the
    batch (one broken adapter's NaNs do not fail the other adapters' requests beside it)."""
    try:
        return _sample(logits, row)
    except Exception as exc:
        logger.warning("a request failed: %s", exc)
        row.job.emit(Event("error", text=f"generation failed: {exc}"))
        row.job.cancelled.set()  # advance() drops it from the batch and its cache
        return 0


def _sample(logits: torch.Tensor, row: _Row) -> int:
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("the model computed non-finite scores (NaN or inf) for this request")
    sampling = row.job.sampling
    if sampling.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        # Keep the smallest set of tokens whose probability reaches top_p (the first always).
        outside = sorted_probs.cumsum(-1) - sorted_probs > sampling.top_p
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    seed = row.job.sampling.seed
    if seed is not None and row.generator is None:  # on the logits' device, or sampling fails
        row.generator = torch.Generator(device=probs.device).manual_seed(seed)
    return int(torch.multinomial(probs, 1, generator=row.generator))


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[Any] = set()
    config = getattr(model, "generation_config", None)
    found = getattr(config, "eos_token_id", None)
    ids.update(found if isinstance(found, list) else [found])
    ids.add(tokenizer.eos_token_id)
    return {int(i) for i in ids if i is not None}
