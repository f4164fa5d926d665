"""The Serving page against a real `lfm serve` (the tiny model and the trained adapter)."""

from __future__ import annotations

import re
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


def test_the_serving_page_loads_a_registered_version_into_the_server(
    page: Watched, workspace: Path, registry: Path
):
    read_key, operate_key = "serve-read-key-0123456789", "serve-operate-key-0123456789"
    env = {"LFM_SERVE_API_KEYS": f"read:{read_key},operate:{operate_key}",
           "LFM_REGISTRY": str(registry)}  # fmt: skip
    adapter = "support=bundles/quickstart_eval/output"
    with serving("examples/tiny-model", "--adapter", adapter, cwd=workspace, env=env) as server:
        args = ("--registry", str(registry), "--serve", server.url, "--serve-api-key-env", "KEY")
        with running_ui(*args, cwd=workspace, env={"KEY": operate_key}) as ui:
            p = page.page
            p.goto(ui.url + "/serving")
            p.get_by_label("Version, or an environment to follow").select_option("support:1.9.0")
            p.get_by_label(re.compile("Served as")).fill("support")
            p.get_by_role("button", name="Load…").click()
            confirm = p.locator(".confirm").inner_text()
            assert "will serve support:1.9.0 as support, in place of" in confirm
            p.get_by_role("button", name="Yes, load it").click()
            assert "support <- support:1.9.0" in p.locator(".flash.ok").inner_text()
            loaded = httpx.get(
                f"{server.v1}/models", headers={"authorization": f"Bearer {read_key}"}
            ).json()["data"]
            assert next(m for m in loaded if m["id"] == "support")["lfm"]["version"] == "1.9.0"
            assert _audited(registry, "support", "1.9.0", "serve-replace")
            # the base model's name is not an adapter's to take
            answer = p.request.get(
                ui.url + "/serving/confirm?reference=support:1.9.0&name=tiny-model"
            )
            assert answer.status == 400 and "base model" in answer.text()
        with running_ui(*args, cwd=workspace, env={"KEY": read_key}) as ui:
            p.goto(ui.url + "/serving")
            p.get_by_label("Version, or an environment to follow").select_option("hostile@staging")
            p.get_by_role("button", name="Load…").click()
            p.get_by_role("button", name="Yes, load it").click()
            refused = p.locator(".flash.error").inner_text()
            assert "HTTP 403" in refused and "operate key" in refused  # the server's refusal
            loaded = httpx.get(
                f"{server.v1}/models", headers={"authorization": f"Bearer {read_key}"}
            ).json()["data"]
            assert next(m for m in loaded if m["id"] == "support")["lfm"]["version"] == "1.9.0"


def _audited(registry: Path, name: str, version: str, action: str) -> bool:
    from lfm.registry import open_registry

    store = open_registry(str(registry))
    try:
        return any(e.action == action and e.version == version for e in store.audit(name))
    finally:
        store.close()
