"""The adapters a server holds: public names, the versions behind them, swaps without a gap.

A request names an adapter by its public name (the ``model`` field). Behind each name is one
loaded adapter under an internal peft name (``lfm_adapter_<n>``), so a new version loads beside
the old one, the name switches to it at once, and the old one is deleted only when the last
request that started on it has finished: no request fails, and each runs on the version that was
live when it started.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lfm.runtime.fingerprint import defining_config, fingerprint, weight_digests
from lfm.runtime.inputs import MiB, open_regular, read_bounded

from .engine import Engine

ADAPTER_CONFIG = "adapter_config.json"
BASE_FINGERPRINT = "base_model_fingerprint"  # in a registry version's lineage
# What a base served by hub id is compared on, its files being the hub cache's.
IDENTIFYING_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "vocab_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "bos_token_id",
    "eos_token_id",
)
LAYER = re.compile(r"\.layers\.(\d+)\.")
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

    def load(
        self,
        name: str,
        path: Path,
        source: str,
        version: str | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> Adapter:
        """Load ``path`` and make it live under ``name`` (replacing what was there, which drains).
        ``lineage``: a registry version's, naming the base it was trained on. Blocks until
        loaded: call it from a worker thread, not the event loop."""
        rank = check_adapter(path, self.base, lineage)
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


def check_adapter(path: Path, base: ServedBase, lineage: dict[str, Any] | None = None) -> int:
    """An adapter this server can batch with the others: a LoRA adapter trained on its base
    model (``lineage``: a registry version's). Its rank, or :class:`AdapterError` saying why
    not."""
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
    lineage = lineage or {}
    trained_on = str(config.get("base_model_name_or_path") or lineage.get("base_model") or "")
    why = base_mismatch(path, trained_on, base, lineage)
    if why:
        raise AdapterError(
            f"{path} was trained on {trained_on or 'a base model it does not name'}, and this "
            f"server serves {base.reference}: {why}; start a server with that base model"
        )
    return int(config.get("r") or 0)


def base_mismatch(
    adapter: Path, trained_on: str, base: ServedBase, lineage: dict[str, Any]
) -> str | None:
    """Why the adapter's base is not the served one, or None when it is. The strongest
    evidence decides: the fingerprint the registry recorded of its base; else its recorded base
    when that is a folder here (compared by content); else the recorded name (a hub id, or a
    folder elsewhere) against the served one's last part. Only when nothing names the base is
    the architecture's shape all there is to compare."""
    recorded = lineage.get(BASE_FINGERPRINT)
    if isinstance(recorded, str) and base.path is not None:
        served = _registry_fingerprint(base.path)
        if served is not None:
            return None if served == recorded else _other_fingerprint(recorded, served)
    if not trained_on:
        return _shape_mismatch(adapter, base)
    folder = Path(trained_on).expanduser()
    if folder.is_dir():
        return _folder_mismatch(folder, base)
    if trained_on == base.reference:
        return None
    # A hub id recorded, a folder served (or a folder elsewhere): its last part names the model.
    served = Path(base.reference.rstrip("/")).name
    if folder.name != served:
        return f"the names differ ({folder.name} and {served}) and neither is a folder to compare"
    return _shape_mismatch(adapter, base)


def _other_fingerprint(recorded: str, served: str) -> str:
    return (
        f"the registry recorded its base model's fingerprint {recorded[:12]}, and the served "
        f"one's is {served[:12]} (another config.json or other weights)"
    )


@functools.cache
def _registry_fingerprint(folder: Path) -> str | None:
    """A base folder's fingerprint, as the registry recorded its own (once per folder: the
    served base does not change while the server runs, and every load compares with it)."""
    return fingerprint(folder)


@functools.cache
def _weights(folder: Path) -> list[tuple[str, int, str]]:
    """A base folder's weight digests, once per folder (see _registry_fingerprint)."""
    return weight_digests(folder)


def _folder_mismatch(folder: Path, base: ServedBase) -> str | None:
    """The adapter's base is a folder here: the same folder, or one with the same defining
    config.json and the same weights (a copy: a pulled registry version, a moved bundle)."""
    if base.path is not None and folder.resolve() == base.path.resolve():
        return None
    theirs = _read_config(folder)
    if theirs is None:
        return f"{folder} holds no readable config.json to compare with"
    if base.path is None:  # served by hub id: its files are the hub cache's, its config is known
        return _config_mismatch(
            {k: theirs.get(k) for k in IDENTIFYING_KEYS},
            {k: base.config.get(k) for k in IDENTIFYING_KEYS},
        )
    mine = _read_config(base.path) or base.config
    return _config_mismatch(theirs, mine) or _weights_mismatch(folder, base.path)


def _weights_mismatch(theirs: Path, mine: Path) -> str | None:
    try:
        same = _weights(theirs) == _weights(mine)
    except (OSError, ValueError) as exc:  # a weight file that is a link elsewhere, unreadable
        return f"the weights of {theirs} cannot be compared with the served ones: {exc}"
    return None if same else f"{theirs} has the same config.json but other weights"


def _config_mismatch(theirs: dict[str, Any], mine: dict[str, Any]) -> str | None:
    keys = sorted(
        k
        for k in {*defining_config(theirs), *defining_config(mine)}
        if theirs.get(k) != mine.get(k)
    )
    if not keys:
        return None
    shown = ", ".join(f"{k} {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in keys[:3])
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return f"their config.json differ: {shown}{more}"


def _shape_mismatch(adapter: Path, base: ServedBase) -> str | None:
    """The last resort, when nothing identifies the adapter's base (no name, or a name only):
    the shape its weights were trained for. peft refuses other widths when it loads, but would
    load an adapter of fewer layers onto a deeper model, leaving the rest untouched."""
    shapes = _tensor_shapes(adapter / "adapter_model.safetensors")
    if not shapes:
        return None  # a .bin adapter, or an unreadable header: loading will say
    layers = [int(m.group(1)) for name in shapes if (m := LAYER.search(name))]
    depth = base.config.get("num_hidden_layers")
    if layers and isinstance(depth, int) and max(layers) >= depth:
        return f"its weights reach layer {max(layers)}, and the served model has {depth} layers"
    every = layers and set(layers) == set(range(max(layers) + 1))  # not a hybrid's few layers
    if every and isinstance(depth, int) and max(layers) + 1 < depth and _every_layer(adapter):
        # peft would load it silently, leaving the deeper layers as they are
        return f"its weights cover {max(layers) + 1} layers, and the served model has {depth}"
    width = base.config.get("hidden_size")
    widths = {dim for name, shape in shapes.items() if ".lora_" in name for dim in shape}
    if isinstance(width, int) and widths and width not in widths:
        return f"its weights are for other widths ({sorted(widths)}), not hidden_size {width}"
    return None


def _every_layer(adapter: Path) -> bool:
    """The adapter's config puts LoRA on every layer: modules named in a list, no layer chosen
    (layers_to_transform) and no pattern (a string target_modules is a regular expression)."""
    config = _read_json(adapter / ADAPTER_CONFIG) or {}
    return config.get("layers_to_transform") is None and isinstance(
        config.get("target_modules"), list
    )


def _tensor_shapes(path: Path) -> dict[str, list[int]]:
    """A safetensors file's tensor names and shapes, from its header alone (no weights read)."""
    try:
        with open_regular(path, "an adapter's weights") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 0 < length <= 16 * MiB:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError):
        return {}
    if not isinstance(header, dict):
        return {}
    return {
        name: list(entry["shape"])
        for name, entry in header.items()
        if isinstance(entry, dict) and isinstance(entry.get("shape"), list)
    }


def _read_config(folder: Path) -> dict[str, Any] | None:
    return _read_json(folder / "config.json")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(read_bounded(path, MiB, f"a {path.name}"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
