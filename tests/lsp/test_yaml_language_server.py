"""Editor support, proven with the real Red Hat YAML language server.

The server is pointed at the local schemas/model_config.schema.json (never a network schema
store) and driven over stdio by tests/lsp/client.py: completion, hover and diagnostics as an
editor sees them, and diagnostics that agree with `lfm validate` on schema-level mistakes.

Install the server with tests/lsp/install.sh (npm, Node >= 18).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from click.testing import CliRunner
from client import INSTALL_COMMAND, SERVER_JS, LspClient, LspError, yaml_settings
from lfm.cli import lfm

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "schemas" / "model_config.schema.json"
QUICKSTART = (REPO / "examples" / "quickstart.yaml").read_text(encoding="utf-8")

PROPERTY = 10  # CompletionItemKind.Property
ERROR = 1  # DiagnosticSeverity.Error

MINIMAL = """\
model_config:
  name: minimal
  base_model: ./model
  dataset:
    source: {type: local, path: ./train.jsonl}
"""


# -- schema lookups (so assertions follow the schema as it grows) ------------------------------


def schema_node(*keys: str) -> dict[str, Any]:
    """The schema of model_config.<keys...>, following `$ref`s."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    node = schema
    for key in keys:
        node = node["properties"][key]
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = schema
            for part in ref[2:].split("/"):
                node = node[part]
    return node


def descriptions(*keys: str) -> set[str]:
    node = schema_node(*keys)
    return {node[k] for k in ("description", "markdownDescription") if k in node}


def doc_text(item: dict[str, Any]) -> str:
    doc = item.get("documentation") or ""
    return doc["value"] if isinstance(doc, dict) else doc


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


# -- the server -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LspClient]:
    node = shutil.which("node")
    if node is None or not SERVER_JS.is_file():
        reason = f"yaml-language-server is not installed; run {INSTALL_COMMAND} (needs node + npm)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    settings = {
        "yaml": yaml_settings(SCHEMA_PATH, ["*.yaml"]),
        "http": {"proxy": "", "proxyStrictSSL": False},
        "[yaml]": {},
        "editor": {},
    }
    client = LspClient([node, str(SERVER_JS), "--stdio"], settings, cwd=REPO)
    try:
        client.initialize(REPO)
        # Ready once the local schema is applied: an unknown top-level key is reported.
        probe = (REPO / "tests" / "lsp" / "probe.lfm.yaml").as_uri()
        client.open(probe, "not_an_lfm_key: 1\n")
        client.wait_for(
            lambda: any(client.diagnostics.get(probe, [])),
            timeout=20,
            what="the local schema to be applied",
        )
        client.close_document(probe)
        yield client
    finally:
        client.close()


_names = count()


@pytest.fixture
def open_doc(server: LspClient, tmp_path: Path):
    """Open text as a new `*.lfm.yaml` document (also written to disk) and return its URI."""
    opened: list[str] = []

    def open_(text: str) -> str:
        path = tmp_path / f"doc{next(_names)}.lfm.yaml"
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        server.open(uri, text)
        opened.append(uri)
        return uri

    yield open_
    for uri in opened:
        server.close_document(uri)


def labels(items: list[dict[str, Any]]) -> set[str]:
    return {item["label"] for item in items}


def property_item(items: list[dict[str, Any]], label: str) -> dict[str, Any]:
    found = [i for i in items if i["label"] == label and i.get("kind") == PROPERTY]
    assert found, f"no property completion {label!r} in {sorted(labels(items))}"
    return found[0]


# -- completion and hover ---------------------------------------------------------------------


def test_top_level_completion_offers_model_config(server, open_doc):
    uri = open_doc("")
    items = server.completion(uri, 0, 0)
    item = property_item(items, "model_config")
    assert doc_text(item) in descriptions("model_config"), item


def test_nested_key_completion_under_model_config(server, open_doc):
    uri = open_doc("model_config:\n  \n")
    items = server.completion(uri, 1, 2)
    for key in ("name", "base_model", "fine_tuning", "dataset"):
        item = property_item(items, key)
        assert doc_text(item) in descriptions("model_config", key), item
    # Every key of model_config is offered, however many the schema has.
    assert set(schema_node("model_config")["properties"]) <= labels(items)


def test_enum_completion_for_fine_tuning_method(server, open_doc):
    text = "model_config:\n  base_model: gpt2\n  fine_tuning:\n    method: \n"
    uri = open_doc(text)
    line = line_of(text, "method:")
    offered = labels(server.completion(uri, line, len(text.splitlines()[line])))
    assert {"lora", "qlora", "full", "auto"} <= offered
    assert set(schema_node("model_config", "fine_tuning", "method")["enum"]) <= offered


def test_enum_completion_for_training_precision(server, open_doc):
    text = "model_config:\n  fine_tuning:\n    training:\n      precision: \n"
    uri = open_doc(text)
    line = line_of(text, "precision:")
    offered = labels(server.completion(uri, line, len(text.splitlines()[line])))
    assert {"auto", "bf16", "fp16", "fp32"} <= offered


def test_hover_on_lora_rank(server, open_doc):
    uri = open_doc(QUICKSTART)
    line = line_of(QUICKSTART, " r: ")
    column = QUICKSTART.splitlines()[line].index("r:")
    hover = server.hover(uri, line, column)
    assert hover is not None
    contents = hover["contents"]
    text = contents["value"] if isinstance(contents, dict) else json.dumps(contents)
    assert "LoRA rank" in text


# -- diagnostics ------------------------------------------------------------------------------


def test_valid_config_has_no_diagnostics(server, open_doc):
    assert server.wait_for_diagnostics(open_doc(QUICKSTART)) == []


def test_bad_enum_is_reported_at_the_value(server, open_doc):
    text = QUICKSTART.replace("    method: lora\n", "    method: lorra\n")
    assert text != QUICKSTART
    diagnostics = server.wait_for_diagnostics(open_doc(text))
    line = line_of(text, "method: lorra")
    start = text.splitlines()[line].index("lorra")
    assert [d["range"] for d in diagnostics] == [
        {
            "start": {"line": line, "character": start},
            "end": {"line": line, "character": start + len("lorra")},
        }
    ], diagnostics
    assert diagnostics[0]["severity"] == ERROR
    assert "lora" in diagnostics[0]["message"]


def test_unknown_key_is_reported_at_the_key(server, open_doc):
    text = QUICKSTART.replace("    method: lora\n", "    metod: lora\n")
    assert text != QUICKSTART
    diagnostics = server.wait_for_diagnostics(open_doc(text))
    line = line_of(text, "metod:")
    assert len(diagnostics) == 1, diagnostics
    (diagnostic,) = diagnostics
    assert diagnostic["range"]["start"] == {
        "line": line,
        "character": text.splitlines()[line].index("metod"),
    }
    assert diagnostic["severity"] == ERROR
    assert "metod" in diagnostic["message"]


@pytest.mark.parametrize("steps", [0, -2])
def test_max_steps_out_of_range_says_what_is_allowed(server, open_doc, steps):
    text = MINIMAL + f"  fine_tuning:\n    training:\n      max_steps: {steps}\n"
    uri = open_doc(text)
    errors = [d for d in server.wait_for_diagnostics(uri) if d.get("severity", ERROR) == ERROR]
    assert len(errors) == 1, errors
    line = line_of(text, "max_steps:")
    assert errors[0]["range"]["start"]["line"] == line
    assert "-1" in errors[0]["message"] and ">= 1" in errors[0]["message"], errors


def test_max_steps_completion_offers_train_for_epochs(server, open_doc):
    text = "model_config:\n  fine_tuning:\n    training:\n      max_steps: \n"
    uri = open_doc(text)
    line = line_of(text, "max_steps:")
    items = server.completion(uri, line, len(text.splitlines()[line]))
    [minus_one] = [i for i in items if i["label"] == "-1"]
    assert "epochs" in doc_text(minus_one), minus_one


# -- agreement with `lfm validate` (schema-level mistakes only) -------------------------------

AGREEMENT = {
    "minimal": (MINIMAL, True),
    "quickstart": (QUICKSTART, True),
    "bad_enum": (MINIMAL + "  fine_tuning:\n    method: lorra\n", False),
    "unknown_key": (MINIMAL + "  fine_tuning:\n    metod: lora\n", False),
    "wrong_type": (MINIMAL + "  fine_tuning:\n    parameters:\n      r: eight\n", False),
    "missing_base_model": (MINIMAL.replace("  base_model: ./model\n", ""), False),
    "max_steps_zero": (MINIMAL + "  fine_tuning:\n    training:\n      max_steps: 0\n", False),
    "max_steps_epochs": (MINIMAL + "  fine_tuning:\n    training:\n      max_steps: -1\n", True),
}


@pytest.mark.parametrize("name", list(AGREEMENT))
def test_server_agrees_with_lfm_validate(server, open_doc, name):
    text, valid = AGREEMENT[name]
    uri = open_doc(text)
    errors = [d for d in server.wait_for_diagnostics(uri) if d.get("severity", ERROR) == ERROR]
    path = Path(unquote(urlparse(uri).path))
    result = CliRunner().invoke(lfm, ["validate", str(path)], catch_exceptions=False)
    assert (result.exit_code == 0) == valid, result.output
    assert bool(errors) == (result.exit_code != 0), (errors, result.output)


def test_client_times_out_instead_of_hanging(server):
    with pytest.raises(LspError):
        server.wait_for(lambda: False, timeout=0.2, what="nothing")
