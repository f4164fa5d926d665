"""A config string can never change an artifact's structure: fuzzed filter by filter, then
through the whole compiler with hostile strings in every free-text field."""

import ast
import json

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


@given(st.text())
def test_markdown_code_is_one_code_span(text):
    quoted = quoting.markdown_code(text)
    assert quoted.count("`") == 2 and "\n" not in quoted


def test_templates_refuse_unquoted_values():
    template = environment().from_string("x = {{ value }}")
    with pytest.raises(TypeError, match="without a quoting filter"):
        template.render(value="oops")


def _hostile_config(value: str) -> str:
    # Backslashes in a path field are refused as Windows paths; put such values elsewhere only.
    path = value if "\\" not in value else "./plain"
    return json.dumps(
        {
            "model_config": {
                "description": value,
                "base_model": path,
                "fine_tuning": {
                    "parameters": {"target_modules": [value], "modules_to_save": [value]}
                },
                "dataset": {"source": {"type": "hub", "path": path, "split": value}},
                # A server URI: a local store's path is rebased into other code (by design).
                "monitoring": {"wandb_project": value, "mlflow_tracking_uri": f"http://{value}"},
            }
        }
    )


def _shape(tree: ast.AST) -> str:
    """The program with every string constant blanked: its structure alone."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = "_"
    return ast.dump(tree)


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_config_strings_reach_artifacts_only_as_data(write_config, evil):
    result = compile_config(write_config(_hostile_config(evil), "evil.json"), "bundle")
    benign = compile_config(write_config(_hostile_config("plain"), "plain.json"), "bundle")

    tree = ast.parse(result.files["train.py"])
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert evil in constants  # the value arrived, as a string constant
    # ... and changed nothing else: the same program as with a plain string.
    assert _shape(tree) == _shape(ast.parse(benign.files["train.py"]))

    accelerate = YAML(typ="safe").load(result.files["accelerate.yaml"])
    assert accelerate.keys() == YAML(typ="safe").load(benign.files["accelerate.yaml"]).keys()
    assert json.loads(result.files["lfm.lock.json"])["model_config"]["description"] == evil
    assert len(result.files["requirements.txt"].splitlines()) == len(
        benign.files["requirements.txt"].splitlines()
    )
    assert result.files["README.md"].count("\n") == benign.files["README.md"].count("\n")


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_local_store_paths_stay_data(write_config, evil):
    """A local MLflow store's path is rebased into an expression: still a string constant."""

    def train_py(store: str, name: str) -> ast.AST:
        config = json.loads(_hostile_config("plain"))
        config["model_config"]["monitoring"]["mlflow_tracking_uri"] = f"sqlite:///{store}.db"
        result = compile_config(write_config(json.dumps(config), name), "bundle")
        return ast.parse(result.files["train.py"])

    path = evil.replace("\\", "/").replace("\x00", "")
    assert _shape(train_py(path, "evil.json")) == _shape(train_py("plain", "plain.json"))


def test_lone_surrogates_are_rejected_when_loading(write_config):
    from lfm.compiler.diagnostics import CompileError

    path = write_config('{"model_config": {"base_model": "m", "description": "\\ud800"}}', "s.json")
    with pytest.raises(CompileError, match="lone surrogate"):
        compile_config(path, "bundle")
