"""The adapters a server holds: public names, the versions behind them, swaps without a gap.

A request names an adapter by its public name (the ``model`` field). Behind each name is one
loaded adapter under an internal peft name (``lfm_adapter_<n>``), so a new version loads beside
the old one, the name switches to it at once, and the old one is deleted only when the last
request that started on it has finished: no request fails, and each runs on the version that was
live when it started.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lfm.runtime.inputs import MiB, read_bounded

from .engine import Engine

ADAPTER_CONFIG = "adapter_config.json"
logger = logging.getLogger("lfm.serving")


class AdapterError(Exception):
    """An adapter that cannot be loaded here; the message says why (a 400 for a client)."""


@dataclass(frozen=True)
class Adapter:
    name: str  # public: what requests put in `model`
    internal: str  # peft's adapter name inside the model
    path: Path
    source: str  # as the user named it: a folder, name:version or name@env
    version: str | None  # the registry version, when it came from the registry
    rank: int
    loaded_at: float


@dataclass(frozen=True)
class ServedBase:
    """What the server's base model is, to check that an adapter was trained on it."""

    reference: str  # as given: a hub id or a folder
    path: Path | None  # the local folder, when it is one
    config: dict[str, Any]  # its config.json


class Adapters:
    def __init__(self, engine: Engine, base: ServedBase) -> None:
        self.engine = engine
        self.base = base
        self._lock = threading.Lock()
        self._live: dict[str, Adapter] = {}
        self._users: Counter[str] = Counter()  # internal name -> requests running on it
        self._retired: set[str] = set()
        self._loaded = 0

    def live(self) -> list[Adapter]:
        with self._lock:
            return sorted(self._live.values(), key=lambda a: a.name)

    def get(self, name: str) -> Adapter | None:
        with self._lock:
            return self._live.get(name)

    def acquire(self, name: str) -> Adapter | None:
        """The adapter live under ``name`` now, held until :meth:`release`."""
        with self._lock:
            adapter = self._live.get(name)
            if adapter:
                self._users[adapter.internal] += 1
            return adapter

    def release(self, adapter: Adapter) -> None:
        with self._lock:
            self._users[adapter.internal] -= 1
            drained = adapter.internal in self._retired and self._users[adapter.internal] <= 0
        if drained:
            self._delete(adapter.internal)

    def load(self, name: str, path: Path, source: str, version: str | None = None) -> Adapter:
        """Load ``path`` and make it live under ``name`` (replacing what was there, which drains).
        Blocks until loaded: call it from a worker thread, not the event loop."""
        rank = check_adapter(path, self.base)
        with self._lock:
            self._loaded += 1
            internal = f"lfm_adapter_{self._loaded}"
        try:
            self.engine.call(lambda: _load_into(self.engine, path, internal)).result()
        except Exception as exc:
            raise AdapterError(f"{source}: cannot load the adapter: {exc}") from exc
        adapter = Adapter(name, internal, path, source, version, rank, time.time())
        with self._lock:
            old = self._live.get(name)
            self._live[name] = adapter
        if old:
            self._retire(old)
        return adapter

    def rename(self, current: str, name: str) -> Adapter:
        """Make the adapter live under ``current`` live under ``name`` instead, as loaded (a
        promoted rollout candidate: no reload); what was under ``name`` drains. Its source
        stays what ``name`` was loaded from (a followed environment stays followed)."""
        with self._lock:
            adapter = self._live.pop(current, None)
            if adapter is None:
                raise KeyError(current)
            old = self._live.get(name)
            moved = replace(adapter, name=name, source=old.source if old else adapter.source)
            self._live[name] = moved
        if old:
            self._retire(old)
        return moved

    def set_aside(self, current: str, name: str, aside: str) -> Adapter:
        """Like :meth:`rename`, but what was under ``name`` stays loaded as ``aside`` instead of
        draining (a promoted blue-green keeps its old version for an instant switch back)."""
        with self._lock:
            if current not in self._live or name not in self._live:
                raise KeyError(current if current not in self._live else name)
            adapter, old = self._live.pop(current), self._live[name]
            self._live[name] = replace(adapter, name=name, source=old.source)
            self._live[aside] = replace(old, name=aside)
            return self._live[name]

    def bring_back(self, aside: str, name: str) -> Adapter:
        """The adapter set aside as ``aside`` takes ``name`` again at once; what was under
        ``name`` drains."""
        with self._lock:
            adapter = self._live.pop(aside, None)
            if adapter is None:
                raise KeyError(aside)
            old = self._live.get(name)
            back = replace(adapter, name=name, source=old.source if old else adapter.source)
            self._live[name] = back
        if old:
            self._retire(old)
        return back

    def unload(self, name: str) -> Adapter:
        with self._lock:
            adapter = self._live.pop(name, None)
        if adapter is None:
            raise KeyError(name)
        self._retire(adapter)
        return adapter

    def _retire(self, adapter: Adapter) -> None:
        with self._lock:
            self._retired.add(adapter.internal)
            drained = self._users[adapter.internal] <= 0
        if drained:
            self._delete(adapter.internal)

    def _delete(self, internal: str) -> None:
        with self._lock:
            if internal not in self._retired:
                return  # deleted already
            self._retired.discard(internal)
            self._users.pop(internal, None)
        deleted = self.engine.call(lambda: _delete_from(self.engine, internal))
        deleted.add_done_callback(_log_failure)


def _log_failure(done: Future[Any]) -> None:
    if done.exception() is not None:  # the adapter stays in memory; serving goes on
        logger.warning("could not delete a drained adapter: %s", done.exception())


def _load_into(engine: Engine, path: Path, internal: str) -> None:
    """On the engine thread: add the adapter to the model (wrapping it in peft the first time).
    The weights are read first, so a broken file fails before the model is touched."""
    from peft import PeftModel
    from peft.utils import load_peft_weights

    load_peft_weights(str(path), device="cpu")
    try:
        if hasattr(engine.model, "peft_config"):
            engine.model.load_adapter(str(path), adapter_name=internal, is_trainable=False)
        else:
            engine.model = PeftModel.from_pretrained(
                engine.model, str(path), adapter_name=internal, is_trainable=False
            )
    except Exception:
        _delete_from(engine, internal)  # no half-loaded adapter stays in memory
        raise
    engine.model.eval()


def _delete_from(engine: Engine, internal: str) -> None:
    """On the engine thread: remove an adapter; the last one unwraps the plain base model (peft
    would keep pointing its active adapter at the deleted one, and every forward would fail)."""
    model = engine.model
    if internal not in getattr(model, "peft_config", {}):
        return
    if len(model.peft_config) == 1:
        engine.model = model.unload().eval()
        return
    model.delete_adapter(internal)
    if model.active_adapter not in model.peft_config:
        model.set_adapter(next(iter(model.peft_config)))


def check_adapter(path: Path, base: ServedBase) -> int:
    """An adapter this server can batch with the others: a LoRA adapter trained on its base
    model. Its rank, or :class:`AdapterError` saying why not."""
    config_file = path / ADAPTER_CONFIG
    if not path.is_dir():
        raise AdapterError(f"{path} is not a folder")
    try:
        config = json.loads(read_bounded(config_file, MiB, "an adapter config"))
    except FileNotFoundError:
        raise AdapterError(f"{path} holds no {ADAPTER_CONFIG}: not a peft adapter") from None
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{config_file} cannot be read: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("r", 0), int):
        raise AdapterError(f"{config_file} is not a peft adapter config")
    kind = str(config.get("peft_type", "")).upper()
    if kind == "LORA" and config.get("use_dora"):
        kind = "DoRA"  # peft cannot mix DoRA adapters in one batch
    if kind != "LORA":
        raise AdapterError(
            f"{path} is a {kind or 'non-LoRA'} adapter; the server batches LoRA adapters only "
            "(merge it into a model with `lfm export --merge` and serve that)"
        )
    trained_on = str(config.get("base_model_name_or_path") or "")
    if trained_on and not same_base(trained_on, base):
        raise AdapterError(
            f"{path} was trained on {trained_on}, and this server serves {base.reference}: "
            "start a server with that base model"
        )
    return int(config.get("r") or 0)


def same_base(trained_on: str, base: ServedBase) -> bool:
    """The adapter's recorded base is the served one: the same name, the same folder, or a
    folder with the same config.json (a copy: a pulled registry version, a moved bundle)."""
    if trained_on == base.reference:
        return True
    folder = Path(trained_on)
    if folder.is_dir():
        if base.path is not None and folder.resolve() == base.path.resolve():
            return True
        try:
            config = json.loads(read_bounded(folder / "config.json", MiB, "a model config"))
        except (OSError, ValueError):
            return False
        return _architecture(config) == _architecture(base.config)
    # A hub id recorded, a folder served (or the reverse): its last part names the model.
    return folder.name == Path(base.reference).name


def _architecture(config: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size")
    return tuple(config.get(key) for key in keys)
