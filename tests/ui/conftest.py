"""Fixtures for the web UI tests: a workspace with a real finished training run (the tiny model,
trained and evaluated by its bundle's own train.py), a real dataset, a real registry, and real
`lfm ui` servers; Playwright drives Debian's chromium (tests/ui/install_browser.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("semver")
pytest.importorskip("markdown_it")

from ui_server import UI, running_ui  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
READ_KEY = "read-key-0123456789abcdef"
OPERATE_KEY = "operate-key-0123456789abcdef"
TIMEOUT_MS = 20_000  # every wait in the browser tests: a slow CI machine is not a failure
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "attribute": "\"'><img src=x onerror=alert(2)>",
    "template": "{{ 7*7 }}",
}


def lfm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a team has it: examples/, a trained and evaluated bundle, a dataset."""
    pytest.importorskip("peft")
    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(
        REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("tiny-model")
    )
    lfm("dev", "tiny-model", "examples/tiny-model", cwd=root)
    lfm("compile", "examples/quickstart_eval.yaml", "-o", "bundles/quickstart_eval", cwd=root)
    done = subprocess.run(
        [sys.executable, "bundles/quickstart_eval/train.py"],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lfm("dataset", "create", "--source", "examples/documents", "-o", "datasets/docs_qa", cwd=root)
    # A run whose folder name is markup: its name reaches every Runs page.
    hostile = root / "bundles" / HOSTILE["attribute"].replace("/", "") / "output"
    hostile.mkdir(parents=True)
    steps = (root / "bundles/quickstart_eval/output/metrics.jsonl").read_text().splitlines()
    (hostile / "metrics.jsonl").write_text("\n".join(steps[:3]) + "\n")
    return root


@pytest.fixture(scope="session")
def registry(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real embedded registry: the trained adapter as three versions (1.9.0, 1.10.0 and
    2.0.0-rc.1, to see semantic order), and a model whose lineage and tags are hostile."""
    from lfm.registry import open_registry
    from lfm.registry.prepare import prepare

    path = tmp_path_factory.mktemp("registry")
    output = workspace / "bundles/quickstart_eval/output"
    store = open_registry(str(path))
    try:
        for version in ("1.9.0", "1.10.0", "2.0.0-rc.1"):
            store.register(prepare(output, name="support", version=version, tags={"team": "a"}))
        store.register(
            prepare(
                output,
                name="hostile",
                version="1.0.0",
                base_model=HOSTILE["script"],
                dataset=HOSTILE["attribute"],
                tags={"note": HOSTILE["template"], "quote": HOSTILE["attribute"]},
            )
        )
        store.promote("hostile:1.0.0", "staging", reason=HOSTILE["script"])
    finally:
        store.close()
    return path


@pytest.fixture(scope="session")
def ui(workspace: Path, registry: Path) -> Iterator[UI]:
    """`lfm ui` without keys: this machine only, every visitor admin."""
    with running_ui("--runs", ".", "--registry", str(registry), cwd=workspace) as server:
        yield server


@pytest.fixture(scope="session")
def keyed_ui(workspace: Path, registry: Path) -> Iterator[UI]:
    """`lfm ui` with a read and an operate key (the variable `lfm serve` reads)."""
    keys = f"read:{READ_KEY},operate:{OPERATE_KEY}"
    with running_ui(
        "--runs", ".", "--registry", str(registry), cwd=workspace, env={"LFM_SERVE_API_KEYS": keys}
    ) as server:
        yield server


@pytest.fixture(scope="session")
def odd_folder(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs and datasets folder of files with hostile text and unexpected shapes: a dataset
    whose card and report hold markup, a run with hostile alerts and lock file, hostile and
    malformed evaluation results, and a dataset report of the wrong shape."""
    root = tmp_path_factory.mktemp("odd")
    dataset = root / "datasets" / "hostile"
    shutil.copytree(workspace / "datasets/docs_qa", dataset)
    report = json.loads((dataset / "dataset_report.json").read_text())
    report["format"] = HOSTILE["script"]
    report["filters"] = {HOSTILE["attribute"]: {"removed": 1, "why": HOSTILE["template"]}}
    (dataset / "dataset_report.json").write_text(json.dumps(report))
    (dataset / "README.md").write_text(
        f"# Card {HOSTILE['template']}\n\n{HOSTILE['script']}\n\n{HOSTILE['attribute']}\n\n"
        "[click](javascript:alert(3)) ![x](https://evil.example/x.png)\n"
    )
    broken = root / "datasets" / "broken"
    broken.mkdir()
    (broken / "dataset_report.json").write_text(
        json.dumps({"report_version": 1, "records": [1, 2], "documents": "many", "filters": 3})
    )
    bundle = root / "bundles" / "hostile"
    output = bundle / "output"
    (output / "eval").mkdir(parents=True)
    steps = (workspace / "bundles/quickstart_eval/output/metrics.jsonl").read_text()
    (output / "metrics.jsonl").write_text(steps)
    alert = {"alert": HOSTILE["script"], "step": 3, "action": HOSTILE["attribute"],
             "message": HOSTILE["template"]}  # fmt: skip
    (output / "alerts.jsonl").write_text(json.dumps(alert) + "\n")
    lock = json.loads((workspace / "bundles/quickstart_eval/lfm.lock.json").read_text())
    lock["name"] = HOSTILE["script"]
    lock["decisions"] = [
        {"path": HOSTILE["attribute"], "value": HOSTILE["script"], "rule": HOSTILE["template"],
         "reason": HOSTILE["script"]}
    ]  # fmt: skip
    (bundle / "lfm.lock.json").write_text(json.dumps(lock))
    results = json.loads((workspace / "bundles/quickstart_eval/output/eval/eval_results.json")
                         .read_text())  # fmt: skip
    inner = results["evaluation_results"]
    inner["model_id"] = HOSTILE["script"]
    inner["scores"] = {HOSTILE["attribute"]: {"value": 1.0, "base": 2.0, "gain": -1.0}}
    inner["gates"] = [{"gate": HOSTILE["template"], "value": 1, "bound": 2, "passed": False}]
    (output / "eval" / "eval_results.json").write_text(json.dumps(results))
    example = {"question": HOSTILE["script"], "reference": HOSTILE["template"],
               "answer": HOSTILE["attribute"], "f1": 0.5, "base_answer": HOSTILE["script"],
               "base_f1": 0.25}  # fmt: skip
    (output / "eval" / "eval_examples.jsonl").write_text(json.dumps(example) + "\nnot json\n")
    odd = root / "bundles" / "odd" / "output"
    odd.mkdir(parents=True)
    (odd / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    (odd / "eval_results.json").write_text(
        json.dumps(
            {
                "evaluation_results": {
                    "adapters": 5,
                    "scores": [1],
                    "gates": {"a": 1},
                    "datasets": [{"sha256": 7}],
                    "model_id": {"a": [1]},
                }
            }
        )  # fmt: skip
    )
    return root


@pytest.fixture(scope="session")
def odd_ui(odd_folder: Path, registry: Path) -> Iterator[UI]:
    """`lfm ui` without keys over odd_folder."""
    with running_ui("--runs", ".", "--registry", str(registry), cwd=odd_folder) as server:
        yield server


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium through Playwright; skipped, saying what is missing, without them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    executable = _chromium()
    if executable is None:
        pytest.skip("chromium is not installed: bash tests/ui/install_browser.sh")
    from playwright.sync_api import expect

    # Playwright's expect waits 5 s by default, whatever the context's timeout: a slow CI
    # machine needs longer (a failed check still fails, only later).
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


class Watched:
    """A page with every console error, page error and dialog it produced recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.errors == [], watched.errors
    assert watched.dialogs == [], watched.dialogs


def registry_state(path: Path, name: str) -> dict[str, Any]:
    """Where each environment of ``name`` points, and its history, read by the registry's API."""
    from lfm.registry import open_registry

    store = open_registry(str(path))
    try:
        records = store.list_versions(name)
        return {
            "pointers": {env: r.version for r in records for env in r.environments},
            "moves": [(m.env, m.action, m.from_version, m.to_version) for m in store.history(name)],
        }
    finally:
        store.close()


def dump(data: Any) -> str:
    return json.dumps(data, sort_keys=True)
