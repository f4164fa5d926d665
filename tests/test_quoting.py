"""A config string can never change an artifact's structure: fuzzed filter by filter, then
through the whole compiler with hostile strings in every free-text field."""

import ast
import json
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lfm.compiler import quoting
from lfm.compiler.pipeline import compile_config
from lfm.compiler.render import environment
from ruamel.yaml import YAML

HOSTILE = [
    '"""; import os; os.system("echo pwned") #',
    "'; import os #",
    "x\nimport os\n",
    "a\\",
    "}}{{ plan }}{% raw %}",
    "\x00\x1b[31m\u2028\u2029",
    "key: value\n- item",
    "$(rm -rf ~) `id`",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_python_literal_round_trips(value):
    assert ast.literal_eval(quoting.python_literal(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_python_text_stays_on_one_line_inside_a_docstring(text):
    quoted = quoting.python_text(text)
    assert "\n" not in quoted and "\r" not in quoted and '"""' not in quoted
    tree = ast.parse(f'"""{quoted}"""\nX = 1\n')
    assert len(tree.body) == 2


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_yaml_scalar_round_trips(value):
    assert YAML(typ="safe").load(f"key: {quoting.yaml_scalar(value)}\n") == {"key": value}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_shell_word_is_one_word(text):
    if "\x00" in text:
        return
    assert shlex.split(quoting.shell_word(text)) == [text]


@given(st.text())
def test_markdown_code_is_one_code_span(text):
    quoted = quoting.markdown_code(text)
    assert quoted.count("`") == 2 and "\n" not in quoted


def test_templates_refuse_unquoted_values():
    template = environment().from_string("x = {{ value }}")
    with pytest.raises(TypeError, match="without a quoting filter"):
        template.render(value="oops")


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_config_strings_reach_artifacts_only_as_data(write_config, evil):
    text = json.dumps(
        {
            "model_config": {
                "description": evil,
                "base_model": evil,
                "fine_tuning": {
                    "parameters": {"target_modules": [evil], "modules_to_save": [evil]}
                },
                "dataset": {"source": {"type": "hub", "path": evil, "split": evil}},
                "monitoring": {"wandb_project": evil},
            }
        }
    )
    result = compile_config(write_config(text, "evil.json"), "bundle")
    train = result.files["train.py"]
    tree = ast.parse(train)
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert evil in constants  # the value arrived, as a string constant
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not any("system" in c or c == "exec" or c == "eval" for c in calls)
    imports = {
        a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert "os" not in imports
    YAML(typ="safe").load(result.files["accelerate.yaml"])
    json.loads(result.files["lfm.lock.json"])
    assert all(
        line.startswith("#") or "==" in line
        for line in result.files["requirements.txt"].splitlines()
    )


def test_lone_surrogates_are_rejected_when_loading(write_config):
    from lfm.compiler.diagnostics import CompileError

    path = write_config('{"model_config": {"base_model": "m", "description": "\\ud800"}}', "s.json")
    with pytest.raises(CompileError, match="lone surrogate"):
        compile_config(path, "bundle")
