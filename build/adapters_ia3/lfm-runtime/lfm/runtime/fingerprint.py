"""What identifies a model folder, whatever its path: its defining config.json and its weights.

`lfm register` records a base model's fingerprint in an adapter's lineage, and `lfm serve`
compares an adapter's base with the served one by the same pieces, so that a copy of a model
(moved, pulled from the registry, saved by another transformers) agrees and another model of
the same shape (other weights, another eos id) does not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .inputs import open_regular

# config.json keys that name, date or store a model rather than define it (the weights say how
# they are stored): a copy saved elsewhere or by another transformers is the same model.
UNDEFINING_KEYS = ("transformers_version", "torch_dtype", "dtype")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
WHOLE_FILE = 8 << 20  # weight files up to this size are hashed whole; larger ones sampled
SAMPLES, SAMPLE = 16, 64 << 10


def defining_config(config: dict[str, Any]) -> dict[str, Any]:
    """config.json less the keys that only name, date or store the model."""
    return {k: v for k, v in config.items() if not k.startswith("_") and k not in UNDEFINING_KEYS}


def weight_digests(folder: Path) -> list[tuple[str, int, str]]:
    """Each weight file's name, size and sha256 (sampled past WHOLE_FILE bytes). Raises OSError
    or ValueError for a weight file that is unreadable or not a regular file."""
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    return [(p.name, *_sampled(p)) for p in files]


def fingerprint(folder: Path) -> str | None:
    """The defining config.json and the weight digests, hashed; None when the folder holds no
    readable config.json or a weight file cannot be read."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    try:
        weights = [list(entry) for entry in weight_digests(folder)]
    except (OSError, ValueError):
        return None
    identity = {"config": defining_config(config), "weights": weights}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _sampled(path: Path) -> tuple[int, str]:
    """(size, sha256 of its bytes): all of them up to WHOLE_FILE, else SAMPLES evenly spaced
    chunks and the last one, so a many-gigabyte model is fingerprinted in milliseconds."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open_regular(path, "a model's weights") as handle:
        if size <= WHOLE_FILE:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            for offset in [size * i // SAMPLES for i in range(SAMPLES)] + [size - SAMPLE]:
                handle.seek(offset)
                digest.update(handle.read(SAMPLE))
    return size, digest.hexdigest()
