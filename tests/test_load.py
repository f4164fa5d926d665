from pathlib import Path

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.load import load_config


def test_yaml_positions_are_one_based_line_and_column(write_config):
    path = write_config("model_config:\n  name: x\n  fine_tuning:\n    method: lora\n")
    loaded = load_config(path)
    assert loaded.data == {"model_config": {"name": "x", "fine_tuning": {"method": "lora"}}}
    loc = loaded.source.values[("model_config", "fine_tuning", "method")]
    assert (loc.line, loc.column) == (4, 13)
    key = loaded.source.keys[("model_config", "fine_tuning", "method")]
    assert (key.line, key.column) == (4, 5)


def test_json_is_parsed_exactly_and_positions_recorded(write_config):
    path = write_config(
        '{\n  "model_config": {\n    "lr": 2e-4,\n    "n": [1, 2]\n  }\n}\n', "c.json"
    )
    loaded = load_config(path)
    assert loaded.data == {"model_config": {"lr": 2e-4, "n": [1, 2]}}
    assert loaded.source.values[("model_config", "n", 1)].line == 4


def test_json_with_tab_indentation_still_loads(write_config):
    path = write_config('{\n\t"model_config": {\n\t\t"name": "x"\n\t}\n}\n', "c.json")
    assert load_config(path).data == {"model_config": {"name": "x"}}


def test_yaml_scalars_become_plain_python(write_config):
    path = write_config("a: 1.5e-4\nb: true\nc: [x, 2]\nd: null\n")
    data = load_config(path).data
    assert data == {"a": 1.5e-4, "b": True, "c": ["x", 2], "d": None}
    assert type(data["a"]) is float and type(data["c"][1]) is int


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        (
            "model_config:\n  r: 1\n  r: 2\n",
            "c.yaml",
            "c.yaml:3:3: error: YAML syntax error: duplicate key 'r'",
        ),
        ('{"a": 1, "a": 2}', "c.json", "error: duplicate key 'a'"),
        ("model_config: [1\n", "c.yaml", "c.yaml:2:1: error: YAML syntax error"),
        ('{"a": }', "c.json", "c.json:1:7: error: JSON syntax error: Expecting value"),
        ("", "c.yaml", "c.yaml:1:1: error: the file is empty"),
        ("- a\n- b\n", "c.yaml", "must hold a mapping"),
    ],
)
def test_bad_files_are_one_clear_error(write_config, text, name, message):
    path = write_config(text, name)
    with pytest.raises(CompileError) as info:
        load_config(path)
    assert message in str(info.value)
    assert len(info.value.diagnostics) == 1


def test_missing_and_undecodable_files(tmp_path: Path):
    with pytest.raises(CompileError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CompileError, match="not UTF-8"):
        load_config(bad)
    with pytest.raises(CompileError, match="is a directory"):
        load_config(tmp_path)


def test_sha256_is_of_the_file_bytes(write_config):
    import hashlib

    path = write_config("model_config: {}\n")
    assert load_config(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
