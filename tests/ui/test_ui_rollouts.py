"""The Rollouts page over a real registry and a real `lfm serve` following support@production:
a running canary with what the server measured of each variant, aborted from the page; a
blue-green promoted from the page, then switched back; a read key sees but cannot act, and a
confirmation for a rollout that ended meanwhile is refused."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import Watched
from ui_server import running_ui

pytest.importorskip("prometheus_client")
pytest.importorskip("semver")
from lfm_server import serving  # noqa: E402

READ_KEY, OPERATE_KEY = "rollout-read-key-0123456789", "rollout-operate-key-0123456789"


@pytest.fixture
def production(workspace: Path, tmp_path: Path) -> Path:
    """A registry where support@production points at 1.0.0, and 1.1.0 waits to roll out."""
    from lfm.registry import open_registry
    from lfm.registry.prepare import prepare

    path = tmp_path / "registry"
    store = open_registry(str(path))
    try:
        for version in ("1.0.0", "1.1.0"):
            output = workspace / "bundles/quickstart_eval/output"
            store.register(prepare(output, name="support", version=version))
        store.promote("support:1.0.0", "production")
    finally:
        store.close()
    return path


def _start(registry: Path, strategy: str, steps: tuple[float, ...]):
    from lfm.registry import open_registry, rollouts

    store = open_registry(str(registry))
    try:
        return rollouts.start(store, "support:1.1.0", "production", strategy, steps, hold_s=3600)
    finally:
        store.close()


def _state(registry: Path) -> tuple[str | None, list[str], list[str]]:
    """support@production's version, the rollouts' statuses and the audit's actions."""
    from lfm.registry import open_registry, rollouts

    store = open_registry(str(registry))
    try:
        pointer = next(
            (r.version for r in store.list_versions("support") if "production" in r.environments),
            None,
        )
        statuses = [r.status for r in rollouts.recent(store)]
        return pointer, statuses, [e.action for e in store.audit("support")]
    finally:
        store.close()


def test_a_canary_is_watched_and_aborted_and_a_blue_green_promoted_then_switched_back(
    page: Watched, workspace: Path, production: Path
):
    env = {
        "LFM_SERVE_API_KEYS": f"read:{READ_KEY},operate:{OPERATE_KEY}",
        "LFM_REGISTRY": str(production),
    }
    follow = ("--adapter", "support=support@production", "--follow-interval", "0.3")
    canary = _start(production, "canary", (0.5, 1.0))
    with serving("examples/tiny-model", *follow, cwd=workspace, env=env) as server:
        headers = {"authorization": f"Bearer {READ_KEY}"}
        _wait(lambda: httpx.get(f"{server.v1}/rollouts", headers=headers).json()["data"])
        for user in range(12):  # sticky keys: both variants get some
            answer = httpx.post(
                f"{server.v1}/completions",
                json={"model": "support", "prompt": "Hello", "max_tokens": 2, "user": f"u{user}"},
                headers=headers,
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        args = ("--registry", str(production), "--serve", server.url, "--serve-api-key-env", "KEY")
        keys = {"KEY": READ_KEY, "LFM_SERVE_API_KEYS": env["LFM_SERVE_API_KEYS"]}
        with running_ui(*args, cwd=workspace, env=keys) as ui:
            p = page.page
            _log_in(p, ui.url, READ_KEY)
            section = p.locator(f"#rollout-{canary.id}")
            assert "support@production: canary 1.0.0 → 1.1.0" in section.inner_text()
            assert "50% (step 1 of 2: 50% → 100%)" in section.locator(".share").inner_text()
            rows = section.locator("table.variants tbody tr")
            measured = {rows.nth(i).locator("th").inner_text(): rows.nth(i) for i in range(2)}
            requests = [int(measured[v].locator("td").nth(1).inner_text()) for v in measured]
            assert sorted(measured) == ["candidate", "stable"] and sum(requests) == 12
            assert min(requests) > 0
            assert "1.1.0" in measured["candidate"].inner_text()
            # A read key sees the rollout, not the buttons; and the action itself is refused.
            assert p.get_by_role("link", name="Abort…").count() == 0
            refused = p.request.get(
                ui.url + "/rollouts/confirm?action=abort&name=support&env=production"
            )
            assert refused.status == 403

            _log_in(p, ui.url, OPERATE_KEY)
            p.get_by_role("link", name="Abort…").click()
            confirm = p.locator(".confirm").inner_text()
            assert f"Rollout {canary.id} ends now, aborted" in confirm
            assert "goes back to 1.0.0" in confirm
            p.get_by_label("Reason (kept in the audit log)").fill("latency")
            p.get_by_role("button", name="Yes, abort").click()
            assert f"rollout {canary.id} aborted: support@production -> 1.0.0" in (
                p.locator(".flash.ok").inner_text()
            )
            assert _state(production)[:2] == ("1.0.0", ["aborted"])
            ended = p.locator("#ended tbody tr").first.inner_text()
            assert "aborted" in ended and "latency" in ended
            # The confirmation for that canary, posted again: it ended, nothing is done.
            token = p.locator("input[name=csrf]").first.get_attribute("value")
            stale = p.request.post(
                ui.url + "/rollouts/act",
                form={"csrf": token or "", "action": "abort", "name": "support",
                      "env": "production", "rollout": str(canary.id)},
            )  # fmt: skip
            assert stale.status == 409 and "open the Rollouts page again" in stale.text()

            blue_green = _start(production, "blue-green", (1.0,))
            p.goto(ui.url + "/rollouts")
            p.get_by_role("link", name="Promote…").click()
            assert "will point at 1.1.0 instead of 1.0.0" in p.locator(".confirm").inner_text()
            p.get_by_role("button", name="Yes, promote").click()
            assert f"rollout {blue_green.id} promoted" in p.locator(".flash.ok").inner_text()
            assert _state(production)[0] == "1.1.0"
            assert "1.0.0" in p.locator("#kept tbody tr").inner_text()
            p.get_by_role("link", name="Switch back…").click()
            assert "they switch at once, loading nothing" in p.locator(".confirm").inner_text()
            p.get_by_role("button", name="Yes, switch-back").click()
            assert "switched back: support@production -> 1.0.0" in p.locator(".flash").inner_text()
            pointer, statuses, audit = _state(production)
            assert pointer == "1.0.0" and statuses == ["switched-back", "aborted"]
            moves = [a for a in audit if not a.startswith("serve-")]  # the server's loads too
            assert moves[-5:] == [
                "rollout-start", "rollout-promote", "promote", "rollout-switch-back", "rollback-to"
            ]  # fmt: skip
            assert p.locator("#kept").count() == 0


def _log_in(p, url: str, key: str) -> None:
    p.goto(url + "/login?next=/rollouts")
    p.get_by_label("API key").fill(key)
    p.get_by_role("button", name="Log in").click()
    p.wait_for_url(url + "/rollouts")


def _wait(condition, seconds: float = 60) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "the server did not start the rollout"
        time.sleep(0.2)
