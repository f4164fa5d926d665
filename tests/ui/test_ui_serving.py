"""The Serving page against a real `lfm serve` (the tiny model and the trained adapter)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import Watched
from ui_server import running_ui

pytest.importorskip("prometheus_client")
from lfm_server import serving  # noqa: E402

SERVE_KEY = "serve-read-key-0123456789"


def test_serving_shows_what_is_loaded_and_its_traffic(page: Watched, workspace: Path):
    keys = {"LFM_SERVE_API_KEYS": f"read:{SERVE_KEY}"}
    adapter = "support=bundles/quickstart_eval/output"
    with serving("examples/tiny-model", "--adapter", adapter, cwd=workspace, env=keys) as server:
        for model in ("support", "support", "tiny-model"):
            answer = httpx.post(
                f"{server.v1}/completions",
                json={"model": model, "prompt": "Hello", "max_tokens": 3},
                headers={"authorization": f"Bearer {SERVE_KEY}"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        env = {"SERVE_KEY": SERVE_KEY}
        args = ("--serve", server.url, "--serve-api-key-env", "SERVE_KEY")
        with running_ui(*args, cwd=workspace, env=env) as ui:
            status = httpx.get(ui.url + "/api/serving").json()
            assert status["error"] is None
            loaded = {m["id"]: m for m in status["models"]}
            assert loaded["support"]["parent"] == "tiny-model"
            traffic = {row["model"]: row for row in status["adapters"]}
            assert traffic["support"]["requests"] == 2 and traffic["tiny-model"]["requests"] == 1
            assert traffic["support"]["mean_latency"] > 0 and traffic["support"]["p95"] > 0

            page.page.goto(ui.url + "/serving")
            assert page.page.locator("#serving-state").inner_text() == "answering"
            rows = page.page.locator("#traffic tbody tr")
            assert rows.count() == 2 and "support" in rows.first.inner_text()
        with running_ui("--serve", server.url, cwd=workspace) as ui:  # no key given
            status = httpx.get(ui.url + "/api/serving").json()
            assert "HTTP 401" in status["error"] and "--serve-api-key-env" in status["error"]
