"""One model server's state: the base model, its adapters, who may call, what it measured.

What it serves is named the way every lfm command names a model (:mod:`lfm.deploy.models`): a
training output folder, a model folder, or a registry reference (``name:version``,
``name@env``). An adapter named ``name@env`` follows that environment: a promotion or rollback
in the registry is loaded within ``follow_interval`` seconds, the old version draining.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfm.deploy import DeployError, ResolvedModel, resolve_model_reference

from .adapters import Adapter, AdapterError, Adapters, ServedBase
from .auth import Caller, Keys
from .embeddings import EmbeddingModels
from .engine import Engine
from .metrics import Metrics
from .protocol import APIError, Request, bad
from .rollout import Rollouts

logger = logging.getLogger("lfm.serving")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ENVIRONMENT_REFERENCE = re.compile(r"[^@:/]+@[^@:/]+")


@dataclass(frozen=True)
class AdapterSpec:
    name: str  # public
    reference: str  # a folder, name:version or name@env


class ModelServer:
    def __init__(
        self,
        base_reference: str,
        adapters: list[AdapterSpec],
        *,
        keys: Keys,
        served_name: str | None = None,
        max_batch: int = 16,
        follow_interval: float = 5.0,
        dtype: str = "auto",
        feedback_log: Path | None = None,
        feedback_text: bool = False,
    ) -> None:
        from lfm.runtime.quiet import quiet_third_party

        quiet_third_party()
        # peft imports bitsandbytes when it is installed, which then warns that its CPU kernels
        # are not downloaded: serving never uses them.
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a server's log is lines, not bars
        self.started = time.time()
        self.keys = keys
        self.feedback_log = feedback_log  # where POST /v1/feedback appends (None: memory only)
        # Whether a rated answer's prompt and text go into the feedback log too (lfm dataset
        # from-feedback makes training records of them): only when the operator asks.
        self.feedback_text = feedback_text
        model, tokenizer, base = _load_base(base_reference, dtype)
        self.tokenizer = tokenizer
        self.base = base
        self.base_name = served_name or Path(base_reference.rstrip("/")).name or base_reference
        self.context = _context_size(model, tokenizer)
        self.engine = Engine(model, tokenizer, max_batch=max_batch)
        self.adapters = Adapters(self.engine, base)
        self.metrics = Metrics(self.engine.waiting, lambda: len(self.adapters.live()))
        self.rollouts = Rollouts()  # canary, A/B, blue-green: see lfm.serving.rollout_driver
        self.embeddings = EmbeddingModels()  # /v1/embeddings (lfm serve --embedding NAME=REF)
        self.metrics.watch_rollouts(self.rollouts)
        self._stop = threading.Event()
        # One swap at a time (by hand or by following), so the last one asked for is what stays.
        self._swapping = threading.Lock()
        self._following: dict[str, str] = {}  # public name -> name@env
        for spec in adapters:
            self.load_adapter(spec.name, spec.reference, None)
        self._follower = threading.Thread(
            target=self._follow, args=(follow_interval,), name="lfm-follow", daemon=True
        )
        self._follower.start()

    @staticmethod
    def valid_name(name: str) -> bool:
        return NAME.fullmatch(name) is not None

    def generates(self, name: str) -> bool:
        """Whether ``name`` is a generative model here (the base model or a loaded adapter):
        /v1/embeddings then says which routes serve it."""
        return name == self.base_name or self.adapters.get(name) is not None

    # ---- prompts ------------------------------------------------------------------------------

    def encode(self, request: Request) -> list[int]:
        tokenizer = self.tokenizer
        if request.messages is not None:
            if not getattr(tokenizer, "chat_template", None):
                raise bad(
                    f"{self.base_name} has no chat template: use /v1/completions with a prompt",
                    "messages",
                )
            try:
                text = tokenizer.apply_chat_template(
                    request.messages, tokenize=False, add_generation_prompt=True
                )
            except Exception as exc:  # the template's own rule (roles must alternate, ...)
                raise bad(f"the chat template refused these messages: {exc}", "messages") from None
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(request.prompt)["input_ids"]
        if not ids:
            raise bad("the prompt is empty", "prompt")
        wanted = len(ids) + request.sampling.max_tokens
        if wanted > self.context:
            raise bad(
                f"this model's context is {self.context} tokens; the prompt has {len(ids)} and "
                f"max_tokens asks for {request.sampling.max_tokens} more",
                "messages" if request.messages is not None else "prompt",
                "context_length_exceeded",
            )
        return list(ids)

    # ---- adapters -----------------------------------------------------------------------------

    def load_adapter(self, name: str, reference: str, caller: Caller | None) -> Adapter:
        """Load ``reference`` (a folder or a registry reference) as ``name``; replaces and drains
        what was live under that name. Blocks: not on the event loop."""
        with self._swapping:
            return self._load(name, reference, caller)

    def unload_adapter(self, name: str, caller: Caller | None) -> Adapter:
        with self._swapping:
            adapter = self.adapters.unload(name)
            self._following.pop(name, None)
        self.metrics.swaps.labels(name, "unload").inc()
        self._audit("unload", adapter, caller)
        return adapter

    # A rollout's swaps (lfm.serving.rollout_driver) take the swap lock, as a load or unload by
    # hand does, and act only while ``public`` still follows ``reference`` (NAME@ENV): an
    # operator's unload, or a load by hand, made in between wins, and the rollout's hidden
    # version is unloaded instead of taking the public name back.

    def promote_candidate(self, candidate: str, public: str, reference: str) -> Adapter | None:
        """A rollout's promoted candidate takes the public name as loaded; the old one drains.
        None when ``public`` no longer follows ``reference`` (the candidate is unloaded)."""
        with self._swapping:
            if not self._drop_unless_followed(candidate, public, reference):
                return None
            adapter = self.adapters.rename(candidate, public)
        self.metrics.swaps.labels(public, "replace").inc()
        logger.info("promote %s <- %s (%s)", public, candidate, adapter.version)
        return adapter

    def set_aside(
        self, candidate: str, public: str, previous: str, reference: str
    ) -> Adapter | None:
        """A promoted blue-green: the candidate takes the public name, the old version stays
        loaded as ``previous`` for a switch back. None when ``public`` no longer follows
        ``reference`` (the candidate is unloaded)."""
        with self._swapping:
            if not self._drop_unless_followed(candidate, public, reference):
                return None
            adapter = self.adapters.set_aside(candidate, public, previous)
        self.metrics.swaps.labels(public, "replace").inc()
        return adapter

    def bring_back(self, previous: str, public: str, reference: str) -> Adapter | None:
        """A switched-back blue-green: the old version kept as ``previous`` takes the public
        name again, without a load. None when ``public`` no longer follows ``reference`` or
        ``previous`` is gone (the follower then loads the environment's version, as after any
        move)."""
        with self._swapping:
            if not self._drop_unless_followed(previous, public, reference):
                return None
            if self.adapters.get(previous) is None:
                return None
            adapter = self.adapters.bring_back(previous, public)
        self.metrics.swaps.labels(public, "replace").inc()
        return adapter

    def _drop_unless_followed(self, hidden: str, public: str, reference: str) -> bool:
        """Whether ``public`` still follows ``reference``; when not, ``hidden`` (a rollout's
        other version) is unloaded. Under the swap lock."""
        if self._following.get(public) == reference and self.adapters.get(public) is not None:
            return True
        if self.adapters.get(hidden) is not None:
            self.adapters.unload(hidden)
            self.metrics.swaps.labels(hidden, "unload").inc()
        logger.info("%s no longer follows %s here: %s is unloaded", public, reference, hidden)
        return False

    def _load(self, name: str, reference: str, caller: Caller | None) -> Adapter:
        path, version = _adapter_files(reference)
        action = "replace" if self.adapters.get(name) else "load"
        lineage = _lineage(reference, version) if version else None
        adapter = self.adapters.load(name, path, reference, version, lineage)
        if ENVIRONMENT_REFERENCE.fullmatch(reference):
            self._following[name] = reference
        else:
            self._following.pop(name, None)  # loaded by hand: it stays until changed by hand
        self.metrics.swaps.labels(name, action).inc()
        self._audit(action, adapter, caller)
        logger.info("%s adapter %s <- %s (%s)", action, name, reference, version or path)
        return adapter

    def _audit(self, action: str, adapter: Adapter, caller: Caller | None) -> None:
        """A swap of a registered version goes to the registry's audit log (who, what, when)."""
        if adapter.version is None:
            return
        try:
            from lfm.registry import open_registry, parse_reference

            store = open_registry()
            try:
                store.note(
                    f"serve-{action}",
                    parse_reference(adapter.source).name,
                    adapter.version,
                    detail=f"served as {adapter.name} by {caller.who if caller else 'startup'}",
                )
            finally:
                store.close()
        except Exception as exc:  # the swap happened; a failed audit line is a warning
            logger.warning("could not write the audit line for %s: %s", adapter.name, exc)

    def _follow(self, interval: float) -> None:
        """Adapters named name@env track the environment: a new version there is loaded."""
        failed: dict[str, str] = {}  # name -> a version that would not load (not retried)
        from .rollout_driver import tick

        while not self._stop.wait(interval):
            try:  # first: a promoted candidate takes its name before the version is compared
                tick(self, dict(self._following))
            except Exception:
                logger.exception("reading the registry's rollouts failed")
            for name, reference in list(self._following.items()):
                try:
                    current = _environment_version(reference)
                    with self._swapping:  # a load or unload by hand in between wins
                        live = self.adapters.get(name)
                        if self._following.get(name) != reference or live is None:
                            continue
                        if current in (live.version, failed.get(name)):
                            continue
                        self._load(name, reference, None)
                except (AdapterError, DeployError) as exc:
                    failed[name] = current
                    logger.warning("%s: keeping %s: %s", reference, live and live.version, exc)
                except Exception:
                    logger.exception("following %s failed", reference)

    def close(self) -> None:
        self._stop.set()
        self.engine.close()


def _load_base(reference: str, dtype: str) -> tuple[Any, Any, ServedBase]:
    """The base model and tokenizer (a folder, a hub id, or a registry model)."""
    import torch
    from lfm.runtime import modeling

    folder: Path | None = None
    source = reference
    try:
        resolved = resolve_model_reference(reference)
    except DeployError:
        resolved = None  # a hub id: transformers finds it (or says it cannot, offline)
    if resolved is not None:
        if resolved.kind != "model":
            raise AdapterError(f"{reference} is an adapter, not a base model")
        folder, source = resolved.path, str(resolved.path)
    if dtype == "auto":
        dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    model = modeling.load_model(source, dtype=dtype)
    tokenizer = modeling.load_tokenizer(source)
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    config = model.config.to_dict()
    return model, tokenizer, ServedBase(reference, folder, config)


def _context_size(model: Any, tokenizer: Any) -> int:
    size = getattr(model.config, "max_position_embeddings", None)
    limit = getattr(tokenizer, "model_max_length", None)
    if not size and limit and limit < 1_000_000:  # tokenizers without one say 1e30
        size = limit
    return int(size or 2048)


def _resolved(reference: str) -> ResolvedModel:
    """What ``reference`` names (lfm.deploy's reading), its errors as :class:`AdapterError`."""
    try:
        return resolve_model_reference(reference)
    except DeployError as exc:
        raise AdapterError(str(exc).removeprefix("--model ")) from None


def _adapter_files(reference: str) -> tuple[Path, str | None]:
    """The local adapter folder behind ``reference``, and its registry version if it has one."""
    resolved = _resolved(reference)
    if resolved.kind != "lora":
        raise AdapterError(f"{reference} is a whole model, not a LoRA adapter")
    from_registry = not (Path.cwd() / reference).exists()
    return resolved.path, resolved.version if from_registry else None


def _lineage(reference: str, version: str) -> dict[str, Any]:
    """A registry version's lineage: the base model it was trained on, as registered."""
    from lfm.registry import RegistryError, open_registry, parse_reference

    store = open_registry()
    try:
        return store.get(f"{parse_reference(reference).name}:{version}", with_files=False).lineage
    except RegistryError as exc:
        raise AdapterError(f"{reference}: {exc}") from None
    finally:
        store.close()


def _environment_version(reference: str) -> str:
    from lfm.registry import open_registry

    store = open_registry()
    try:
        return store.get(reference, with_files=False).version
    finally:
        store.close()


def base_of(reference: str) -> str:
    """The base model an adapter reference was trained on (for `lfm serve --adapter` alone)."""
    resolved = _resolved(reference)
    if resolved.kind == "model":
        return str(resolved.path)
    return str(resolved.base_model)


__all__ = ["APIError", "AdapterSpec", "ModelServer", "base_of"]
