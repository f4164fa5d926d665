"""The seed's Phase 2 and Phase 3 shapes normalize into model_config."""

from pathlib import Path

from lfm.compiler.load import load_config
from lfm.compiler.normalize import SEED_BASE_MODEL, normalize
from lfm.compiler.pipeline import analyze

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_model_config_shape_passes_through(write_config):
    path = write_config("model_config:\n  name: a\n")
    result = normalize(load_config(path))
    assert result.shape == "model_config"
    assert result.data == {"model_config": {"name": "a"}}
    assert result.notes == ()


def test_phase2_shape_moves_each_key_to_its_model_config_place():
    result = normalize(load_config(EXAMPLES / "seed_phase2_qlora.json"))
    assert result.shape == "fine_tuning"
    assert result.data == {
        "model_config": {
            "base_model": "meta-llama/Llama-2-7b-hf",
            "fine_tuning": {"method": "qlora"},
            "dataset": {
                "source": {"type": "rag_documents"},
                "preprocessing": {"qa_generation": {"enabled": True}},
                "augmentation": True,
                "validation": {"split_ratio": 0.2},
            },
            "evaluation": {"metrics": ["perplexity", "rag_accuracy"]},
        }
    }
    # Positions follow the moved values: method was written on line 3 of the file.
    assert result.source.values[("model_config", "fine_tuning", "method")].line == 3
    assert any("normalized into `model_config`" in n.message for n in result.notes)


def test_phase3_shape_keeps_blocks_and_defaults_the_base_model():
    result = normalize(load_config(EXAMPLES / "seed_phase3_distributed.json"))
    model = result.data["model_config"]
    assert result.shape == "training_job"
    assert model["fine_tuning"] == {"method": "hybrid_lora_adapter"}
    assert model["distributed"] == {"strategy": "deepspeed_zero3", "gpus": 8, "nodes": 2}
    assert model["monitoring"]["wandb_project"] == "llamafarm_models"
    assert model["base_model"] == SEED_BASE_MODEL
    assert any(n.level == "warning" and "base_model" in n.message for n in result.notes)


def test_unknown_keys_in_a_legacy_block_are_reported_at_their_line(write_config):
    path = write_config(
        '{\n  "fine_tuning": {\n    "method": "lora",\n    "epocs": 3\n  }\n}\n', "p2.json"
    )
    import pytest
    from lfm.compiler.diagnostics import CompileError

    with pytest.raises(CompileError) as info:
        analyze(path)
    [error] = [d for d in info.value.diagnostics if d.level == "error"]
    assert "unknown key 'epocs'" in error.message
    assert error.location is not None and error.location.line == 4


def test_explain_says_the_shape_was_normalized():
    analysis = analyze(EXAMPLES / "seed_phase2_qlora.json")
    assert analysis.normalized.shape == "fine_tuning"
    assert any(d.level == "note" for d in analysis.diagnostics)
