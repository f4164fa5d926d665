"""Which tokenizer counts chunk sizes: ``--tokenizer``, else the config's base model, else words.

Chunk sizes are meant in the tokens the model will see, so `dataset create --config` counts with
the config's ``base_model`` tokenizer when it can be had without the network: a local folder, or
a hub id already in the local Hugging Face cache. Otherwise it counts words and says why in one
line; a dataset command never downloads a model as a side effect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lfm.runtime import paths

from .errors import DatasetError

WORDS = "words"  # `--tokenizer words`: count words even when a tokenizer is available


def base_model_tokenizer(base_model: str, config_dir: Path) -> tuple[str | None, str | None]:
    """(what to count with: a path, a cached hub id or None for words; a notice when None)."""
    try:
        import transformers  # noqa: F401  (the `train` extra, not the `dataset` one)
    except ImportError:
        return None, "transformers is not installed (pip install 'lfm[train]')"
    if paths.is_local(base_model):
        folder = Path(base_model).expanduser()
        folder = folder if folder.is_absolute() else config_dir / folder
        if not folder.is_dir():
            return None, f"base_model {folder} is not a folder here"
        name = str(folder)
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snapshot_download(base_model, local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError):
            return None, f"base_model {base_model!r} is not in the local Hugging Face cache"
        name = base_model
    try:
        load_tokenizer(name)
    except DatasetError as exc:
        return None, str(exc)
    return name, None


def load_tokenizer(name: str) -> Any:
    """A Hugging Face tokenizer from a folder or hub id, the local cache first (no network when
    the id is cached); a clear :class:`DatasetError` when it cannot be loaded."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise DatasetError(
            f"counting tokens with {name} needs transformers: pip install 'lfm[train]' "
            "(or --tokenizer words)"
        ) from None

    local = Path(name).expanduser()
    if local.exists():
        name = str(local)
    else:
        try:
            return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError):
            pass  # not cached: an explicit --tokenizer id may be downloaded
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot load a tokenizer from {name} ({first})") from None
