"""The web UI in a real headless Chromium, against a real registry and a real finished run."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import HOSTILE, OPERATE_KEY, READ_KEY, TIMEOUT_MS, Watched, registry_state
from ui_server import UI, running_ui

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

PAGES = ("/models", "/models/support", "/runs", "/evaluations", "/datasets", "/serving")


@pytest.mark.parametrize("path", PAGES)
def test_each_page_opens_without_errors(page: Watched, ui: UI, path: str):
    response = page.page.goto(ui.url + path)
    assert response is not None and response.status == 200
    assert page.page.locator("h1").count() == 1
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_models_show_versions_in_semantic_order_with_lineage(page: Watched, ui: UI):
    page.page.goto(ui.url + "/models/support")
    headings = page.page.locator("section.version h3").all_inner_texts()
    versions = [h.split()[0] for h in headings]
    # newest first: 2.0.0-rc.1 above 1.10.0 above 1.9.0 (not string order)
    assert versions == ["support:2.0.0-rc.1", "support:1.10.0", "support:1.9.0"]
    first = page.page.locator("section.version").first
    text = first.inner_text()
    assert "base_model" in text and "dataset_sha256" in text and "config_sha256" in text
    assert "team=a" in text
    assert "max_perplexity passed" in text  # the gates read from eval_results.json


def test_promote_and_rollback_change_the_registry(page: Watched, ui: UI, registry: Path):
    p = page.page
    p.goto(ui.url + "/models/support")
    for version in ("1.9.0", "1.10.0"):
        escaped = version.replace(".", "\\.")
        section = p.locator(f"#v-{escaped}")
        section.get_by_label("Promote to").select_option("production")
        section.get_by_role("button", name=f"Promote {version}…").click()
        assert "will point at" in p.locator(".confirm").inner_text()
        p.get_by_label("Reason (kept in the history)").fill("tested in the browser")
        p.get_by_role("button", name="Yes, promote").click()
        assert f"support@production -> {version}" in p.locator(".flash").inner_text()
    assert registry_state(registry, "support")["pointers"]["production"] == "1.10.0"
    row = p.locator("tr[data-env=production]")
    assert row.locator(".current").inner_text() == "1.10.0"

    row.get_by_role("button", name="Roll back production…").click()
    assert "will go back to 1.9.0 from 1.10.0" in p.locator(".confirm").inner_text()
    p.get_by_role("button", name="Yes, rollback").click()
    assert "rolled back from 1.10.0" in p.locator(".flash.ok").inner_text()
    state = registry_state(registry, "support")
    assert state["pointers"]["production"] == "1.9.0"
    assert state["moves"][-1] == ("production", "rollback", "1.10.0", "1.9.0")
    assert "tested in the browser" in p.locator("#history + .scroll").inner_text()


def test_a_keyboard_reaches_promote(page: Watched, ui: UI):
    """Tab from the top of the page reaches a promote button and Enter opens its confirmation."""
    p = page.page
    p.goto(ui.url + "/models/support")
    for _ in range(60):
        p.keyboard.press("Tab")
        focused = p.evaluate("document.activeElement.textContent")
        if focused.startswith("Promote "):
            break
    else:
        raise AssertionError("no promote button reached with Tab")
    p.keyboard.press("Enter")
    p.wait_for_url(re.compile(r"/confirm\?"))
    assert p.locator("h1").inner_text() == "Confirm promote"


def test_a_finished_run_shows_curves_eval_loss_config_and_reasons(page: Watched, ui: UI):
    p = page.page
    p.goto(ui.url + "/runs")
    p.get_by_role("link", name="bundles/quickstart_eval").click()
    assert p.locator("#run-status").inner_text() == "finished"
    charts = p.locator("#charts")
    expect(p.locator("#charts")).to_have_attribute("data-points", "24")
    assert "24 steps logged" in p.locator("#chart-summary").inner_text()
    assert charts.locator("canvas").count() == 3  # uPlot drew the three charts
    assert p.locator("#eval-losses tbody tr").count() == 4  # one per epoch
    assert "derived.global_batch_size" in p.locator("table").last.inner_text()
    p.get_by_role("link", name="evaluation results").click()
    assert p.locator("h1").inner_text().startswith("Evaluation")


def test_a_live_run_gains_points_while_the_page_is_open(page: Watched, ui: UI, workspace: Path):
    source = (workspace / "bundles/quickstart_eval/output/metrics.jsonl").read_text().splitlines()
    output = workspace / "live" / f"run-{time.monotonic_ns()}" / "output"
    output.mkdir(parents=True)
    steps = output / "metrics.jsonl"
    steps.write_text("\n".join(source[:5]) + "\n")
    p = page.page
    name = str(output.relative_to(workspace))
    link = p.get_by_role("link", name=name)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:  # the runs folder is searched again every few seconds
        p.goto(ui.url + "/runs")
        if link.count():
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never appeared on /runs within {TIMEOUT_MS} ms")
        time.sleep(0.5)
    link.click()
    expect(p.locator("#charts")).to_have_attribute("data-points", "5")
    assert p.locator("#run-status").inner_text() == "running"
    with steps.open("a") as handle:  # the trainer logs more steps
        handle.write("\n".join(source[5:12]) + "\n")
        handle.write(source[12][:20])  # and is half-way through writing the next line
    expect(p.locator("#charts")).to_have_attribute("data-points", "12")
    with steps.open("a") as handle:
        handle.write(source[12][20:] + "\n")
    expect(p.locator("#charts")).to_have_attribute("data-points", "13")
    assert "step 13" in p.locator("#chart-summary").inner_text()


def test_evaluation_compares_with_the_base_and_shows_gates(page: Watched, ui: UI):
    p = page.page
    p.goto(ui.url + "/evaluations")
    p.get_by_role("link", name="bundles/quickstart_eval/output/eval").click()
    perplexity = p.locator("table.scores tr", has_text="perplexity")
    assert "better" in perplexity.inner_text()
    gates = p.locator("ul.gates").inner_text()
    assert "pass: max_perplexity" in gates
    assert p.locator("figure img").evaluate("img => img.naturalWidth") > 0  # the chart loaded
    # Each held-out question with both models' answers (eval_examples.jsonl).
    expect(p.locator("table.examples tbody tr")).to_have_count(5)
    assert "F1" in p.locator("table.examples tbody tr").first.inner_text()


def test_datasets_show_the_report_histogram_and_card(page: Watched, ui: UI):
    p = page.page
    p.goto(ui.url + "/datasets")
    p.get_by_role("link", name="datasets/docs_qa").click()
    text = p.locator("main").inner_text()
    assert "Quality control" in text and "exact_duplicate" in text
    assert p.locator("figure img").evaluate("img => img.naturalWidth") > 0
    assert p.locator("article.card h1").inner_text() == "Dataset card"


def test_hostile_names_are_shown_as_text_and_never_run(page: Watched, ui: UI):
    p = page.page
    for path in ("/models", "/models/hostile", "/runs"):
        p.goto(ui.url + path)
        if path != "/runs":
            # the tag's exact text: no template ran on it (it would read note=49)
            tag = p.locator("span.tag", has_text="note=")
            expect(tag).to_have_count(1)
            assert tag.inner_text() == "note=" + HOSTILE["template"]
        assert p.locator("main script, main img[src=x]").count() == 0
    p.goto(ui.url + "/models/hostile")
    text = p.locator("main").inner_text()
    assert HOSTILE["script"] in text and HOSTILE["attribute"] in text
    p.goto(ui.url + "/runs")
    link = p.get_by_role("link", name=HOSTILE["attribute"])
    link.click()
    assert HOSTILE["attribute"] in p.locator("h1").inner_text()
    # the page fixture asserts: no dialog opened, no console or page error


def test_a_read_key_sees_pages_but_cannot_promote(page: Watched, keyed_ui: UI, registry: Path):
    p = page.page
    p.goto(keyed_ui.url + "/models/support")
    assert p.url.startswith(keyed_ui.url + "/login")  # keys configured: log in first
    p.get_by_label("API key").fill(READ_KEY)
    p.get_by_role("button", name="Log in").click()
    p.wait_for_url(keyed_ui.url + "/models/support")
    assert p.get_by_role("button", name=re.compile("Promote")).count() == 0
    assert "need an operate key" in p.locator("main").inner_text()
    cookie = next(c for c in p.context.cookies() if c["name"] == "lfm_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # the form a read key cannot see, posted by hand with this session's own token
    token = p.locator("header input[name=csrf]").get_attribute("value")
    before = registry_state(registry, "support")
    answer = p.request.post(
        keyed_ui.url + "/models/support/promote",
        form={"csrf": token, "env": "staging", "version": "1.9.0"},
    )
    assert answer.status == 403 and "needs operate" in answer.text()
    assert registry_state(registry, "support") == before


def test_an_operate_key_promotes_and_a_post_without_the_token_is_refused(
    page: Watched, keyed_ui: UI, registry: Path
):
    p = page.page
    p.goto(keyed_ui.url + "/login?next=/models/support")
    p.get_by_label("API key").fill(OPERATE_KEY)
    p.get_by_role("button", name="Log in").click()
    p.wait_for_url(keyed_ui.url + "/models/support")
    before = registry_state(registry, "support")
    for form in (
        {"env": "dev", "version": "1.9.0"},
        {"csrf": "forged", "env": "dev", "version": "1.9.0"},
    ):
        answer = p.request.post(keyed_ui.url + "/models/support/promote", form=form)
        assert answer.status == 403 and "security token" in answer.text()
    assert registry_state(registry, "support") == before
    section = p.locator("#v-1\\.10\\.0")
    section.get_by_label("Promote to").select_option("dev")
    section.get_by_role("button", name="Promote 1.10.0…").click()
    p.get_by_role("button", name="Yes, promote").click()
    assert "support@dev -> 1.10.0" in p.locator(".flash.ok").inner_text()
    moves = registry_state(registry, "support")["moves"]
    assert moves[-1][:2] == ("dev", "promote")
    p.get_by_role("button", name="Log out").click()
    p.wait_for_url(re.compile("/login"))


def test_pages_fit_a_phone(browser, ui: UI):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        p = context.new_page()
        for path in PAGES:
            p.goto(ui.url + path)
            overflow = p.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)  # wide tables scroll inside their box
    finally:
        context.close()


def test_screenshots_of_each_page(page: Watched, workspace: Path, tmp_path: Path):
    """Each page rendered to a PNG, over a registry of the trained adapter's versions (what
    docs/ui/ holds: LFM_UI_SCREENSHOTS=docs/ui writes there). Values that are this machine's
    own (folders, the registering user, a local base model's path) are masked."""
    import os

    from lfm.registry import open_registry
    from lfm.registry.prepare import prepare

    target = Path(os.environ.get("LFM_UI_SCREENSHOTS", tmp_path / "shots"))
    target.mkdir(parents=True, exist_ok=True)
    registry = tmp_path / "registry"
    store = open_registry(str(registry))
    try:
        output = workspace / "bundles/quickstart_eval/output"
        for version in ("1.0.0", "1.1.0"):
            store.register(prepare(output, name="support", version=version, tags={"team": "a"}))
        store.promote("support:1.0.0", "production", reason="first release")
        store.promote("support:1.1.0", "staging", reason="candidate")
        from lfm.registry import rollouts

        rollouts.start(store, "support:1.1.0", "production", "canary", (0.1, 0.5, 1.0))
    finally:
        store.close()
    with running_ui("--runs", "bundles", "--datasets", "datasets", "--registry", str(registry),
                    cwd=workspace) as ui:  # fmt: skip
        p = page.page
        p.goto(ui.url + "/runs")
        p.get_by_role("link", name="quickstart_eval").click()
        expect(p.locator("#charts")).to_have_attribute("data-points", "24")
        shots = {"run": p.url}
        for name, path in (("models", "/models"), ("model", "/models/support"),
                           ("runs", "/runs"), ("evaluations", "/evaluations"),
                           ("datasets", "/datasets"), ("rollouts", "/rollouts")):  # fmt: skip
            shots[name] = ui.url + path
        for name, url in shots.items():
            p.goto(url)
            if name == "run":
                expect(p.locator("#charts")).to_have_attribute("data-points", "24")
            # the top of each page: a run's full decision table would make a huge picture
            masked = p.locator(".machine-path")
            p.screenshot(path=str(target / f"{name}.png"), mask=[masked])
            assert (target / f"{name}.png").stat().st_size > 5000
        assert p.locator(".machine-path").count() >= 1  # the model page's are masked


def test_hostile_files_are_shown_as_text_and_never_run(page: Watched, odd_ui: UI):
    """A dataset card (the one page value marked safe), a report, alerts, evaluation results
    and a lock file, each holding markup: shown as text, nothing runs, nothing loads."""
    p = page.page
    p.goto(odd_ui.url + "/datasets")
    p.get_by_role("link", name="datasets/hostile").click()
    card = p.locator("article.card")
    assert card.locator("h1").inner_text() == "Card " + HOSTILE["template"]
    card_text = card.inner_text()
    assert HOSTILE["script"] in card_text and HOSTILE["attribute"] in card_text
    assert card.locator("script, img, a[href^=javascript]").count() == 0
    assert p.get_by_text(HOSTILE["script"]).first.is_visible()  # the report's format
    filters = p.locator("table").first.locator("tbody tr")
    assert filters.first.locator("th").inner_text() == HOSTILE["attribute"]
    assert filters.first.locator("td").last.inner_text() == HOSTILE["template"]

    p.goto(odd_ui.url + "/runs")
    p.get_by_role("link", name="bundles/hostile").click()
    alert = p.locator("ul.alerts li")
    assert alert.locator("strong").inner_text() == HOSTILE["script"]
    assert HOSTILE["template"] in alert.inner_text() and HOSTILE["attribute"] in alert.inner_text()
    decision = p.locator("tr", has=p.locator("code", has_text="onerror")).first
    assert decision.locator("td").nth(2).inner_text() == HOSTILE["template"]
    assert HOSTILE["script"] in p.locator("main > p").first.inner_text()  # the lock's name

    p.goto(odd_ui.url + "/evaluations")
    p.get_by_role("link", name="bundles/hostile/output/eval").click()
    assert HOSTILE["script"] in p.locator("main > p").first.inner_text()
    score = p.locator("table.scores tbody th").first
    assert score.inner_text().startswith(HOSTILE["attribute"])
    assert p.locator("ul.gates li").inner_text().startswith("FAIL: " + HOSTILE["template"])
    row = p.locator("table.examples tbody tr")
    assert row.locator("td").first.inner_text() == HOSTILE["script"]
    assert row.locator("td").nth(1).inner_text() == HOSTILE["template"]
    assert "eval_examples.jsonl line 2: not a JSON object" in p.locator("main").inner_text()
    for path in ("/datasets", "/runs", "/evaluations"):
        p.goto(odd_ui.url + path)
        assert p.locator("main script, main img[src=x]").count() == 0
    # the page fixture asserts: no dialog opened, no console or page error
