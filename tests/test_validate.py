"""Schema validation: every error at once, worded for people, at the right place."""

import json

import pytest
from lfm.compiler.load import load_config
from lfm.compiler.normalize import normalize
from lfm.compiler.schema import load_schema
from lfm.compiler.validate import validate


def errors(write_config, text, name="c.yaml"):
    loaded = normalize(load_config(write_config(text, name)))
    return [d.format() for d in validate(loaded.data, loaded.source)]


def test_the_schema_is_valid_2020_12_and_every_property_documented():
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)

    def walk(node, path):
        for name, prop in node.get("properties", {}).items():
            where = f"{path}.{name}"
            assert prop.get("description"), f"{where} has no description"
            if prop.get("type") == "object" and "properties" in prop:
                walk(prop, where)
            elif prop.get("type") != "object":
                assert "default" in prop or "enum" in prop or "examples" in prop, where
                assert "examples" in prop or "enum" in prop, f"{where} has no example"

    walk(schema["$defs"]["model_config"], "model_config")


def test_all_errors_are_reported_at_once_sorted_by_line(write_config):
    found = errors(
        write_config,
        "model_config:\n"
        "  base_model: 3\n"
        "  fine_tuning:\n"
        "    metod: lora\n"
        "    parameters: {r: 0}\n"
        "    training: {precision: bf17}\n",
    )
    assert found == [
        "c.yaml:2:15: error: expected a string, got number 3 (at model_config.base_model)",
        "c.yaml:4:5: error: unknown key 'metod' in model_config.fine_tuning; did you mean 'method'? "
        "(at model_config.fine_tuning.metod)",
        "c.yaml:5:21: error: must be >= 1, got 0 (at model_config.fine_tuning.parameters.r)",
        "c.yaml:6:27: error: 'bf17' is not one of: auto, bf16, fp16, fp32; did you mean 'bf16'? "
        "(at model_config.fine_tuning.training.precision)",
    ]


def test_missing_required_key_points_at_the_parent(write_config):
    found = errors(write_config, "model_config:\n  name: x\n")
    assert found == ["c.yaml:1:1: error: missing required key 'base_model' (at model_config)"]


def test_unknown_top_level_key_lists_the_allowed_ones(write_config):
    [found] = errors(write_config, "model_config: {base_model: m}\nfoo: 1\n")
    assert "unknown key 'foo' at the top level" in found
    assert "model_config" in found


def test_json_configs_get_positions_too(write_config):
    text = json.dumps({"model_config": {"base_model": "m", "version": "one"}}, indent=2)
    [found] = errors(write_config, text, "c.json")
    assert found.startswith("c.json:4:16: error: 'one' is not a semantic version")


def test_target_modules_accepts_a_list_or_all_linear_only(write_config):
    base = "model_config:\n  base_model: m\n  fine_tuning:\n    parameters:\n      target_modules: {}\n"
    assert errors(write_config, base.format("[q_proj]")) == []
    assert errors(write_config, base.format("all-linear")) == []
    [found] = errors(write_config, base.format("q_proj"))
    assert "expected a list of module names or 'all-linear'" in found


def test_a_valid_config_has_no_errors(write_config):
    assert errors(write_config, "model_config:\n  base_model: m\n") == []


def test_the_method_enum_is_exactly_the_registered_methods():
    from lfm.compiler.methods import METHODS

    method = load_schema()["$defs"]["model_config"]["properties"]["fine_tuning"]["properties"][
        "method"
    ]
    assert sorted(method["enum"]) == sorted([*METHODS, "auto"])


def test_every_enum_has_a_description_per_value_for_editors():
    def walk(node, path):
        for name, prop in node.get("properties", {}).items():
            target = prop.get("items", prop) if prop.get("type") == "array" else prop
            if "enum" in target:
                docs = target.get("markdownEnumDescriptions", [])
                assert len(docs) == len(target["enum"]), f"{path}.{name}"
            walk(prop, f"{path}.{name}")

    walk(load_schema()["$defs"]["model_config"], "model_config")


def test_max_steps_is_minus_one_for_epochs_or_at_least_one(write_config):
    base = "model_config:\n  base_model: m\n  fine_tuning:\n    training:\n      max_steps: {}\n"
    for ok in (-1, 1, 100):
        assert errors(write_config, base.format(ok)) == [], ok
    for bad in (0, -2):
        [found] = errors(write_config, base.format(bad))
        assert found == (
            f"c.yaml:5:18: error: must be -1 (train for `epochs`) or >= 1, got {bad} "
            "(at model_config.fine_tuning.training.max_steps)"
        )
    [found] = errors(write_config, base.format("ten"))
    assert "expected an integer, got" in found


def test_a_pattern_matches_the_whole_value_a_final_newline_included(write_config):
    """JSON Schema patterns are ECMA regexes: `$` ends the string (Python's `re` would let a
    final newline through, and a name with one would reach file names and manifests)."""
    from lfm.compiler.diagnostics import CompileError
    from lfm.compiler.pipeline import analyze

    config = 'model_config:\n  name: "bot\\n"\n  base_model: org/m\n'
    with pytest.raises(CompileError, match="is not a valid name"):
        analyze(write_config(config))
    analyze(write_config(config.replace("bot\\n", "bot")))
