"""The UI's access rules over plain HTTP (no browser): keys, roles, CSRF, hosts, headers; and
the pieces that read run files, without a server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import OPERATE_KEY, READ_KEY, registry_state
from ui_server import UI, running_ui


def _token(client: httpx.Client, path: str = "/login") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _logged_in(ui: UI, key: str) -> httpx.Client:
    client = httpx.Client(base_url=ui.url)
    answer = client.post("/login", data={"csrf": _token(client), "key": key, "next": "/models"})
    assert answer.status_code == 303 and answer.headers["location"] == "/models"
    return client


def test_every_response_carries_the_security_headers(ui: UI):
    answer = httpx.get(ui.url + "/models")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "set-cookie" not in answer.headers  # a page without a form stores no session
    form = httpx.get(ui.url + "/models/support/confirm?action=promote&env=staging&version=1.9.0")
    cookie = form.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_without_keys_only_this_machines_names_are_served(ui: UI):
    """A page elsewhere cannot reach a keyless UI through another name for 127.0.0.1."""
    assert httpx.get(ui.url + "/models", headers={"host": "evil.example"}).status_code == 400
    assert httpx.get(ui.url + "/models", headers={"host": "localhost"}).status_code == 200


def test_with_keys_nothing_shows_before_logging_in(keyed_ui: UI):
    assert httpx.get(keyed_ui.url + "/models").headers["location"].startswith("/login?next=")
    api = httpx.get(keyed_ui.url + "/api/runs/0/steps")
    assert api.status_code == 401 and "log in" in api.json()["error"]
    client = httpx.Client(base_url=keyed_ui.url)
    wrong = client.post("/login", data={"csrf": _token(client), "key": "x" * 20})
    assert wrong.status_code == 401 and "unknown API key" in wrong.text
    assert "x" * 20 not in wrong.text  # a key is never echoed


def test_a_login_elsewhere_cannot_go_elsewhere(keyed_ui: UI):
    client = httpx.Client(base_url=keyed_ui.url)
    for target in (
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
    ):
        answer = client.post(
            "/login", data={"csrf": _token(client), "key": READ_KEY, "next": target}
        )
        assert answer.headers["location"] == "/models"


def test_posts_need_the_sessions_token_and_the_role(keyed_ui: UI, registry: Path):
    before = registry_state(registry, "support")
    form = {"env": "staging", "version": "1.9.0"}
    operator = _logged_in(keyed_ui, OPERATE_KEY)
    assert operator.post("/models/support/promote", data=form).status_code == 403
    other = httpx.Client(base_url=keyed_ui.url)  # another visitor's own token
    stolen = {**form, "csrf": _token(other)}
    assert operator.post("/models/support/promote", data=stolen).status_code == 403
    mine = {**form, "csrf": _token(operator, "/models")}
    cross = operator.post(
        "/models/support/promote", data=mine, headers={"origin": "http://evil.example"}
    )
    assert cross.status_code == 403 and "cross-site" in cross.text
    assert operator.post("/models/support/promote", json=mine).status_code == 415

    reader = _logged_in(keyed_ui, READ_KEY)
    token = _token(reader, "/models")
    answer = reader.post("/models/support/promote", data={**form, "csrf": token})
    assert answer.status_code == 403 and "this needs operate" in answer.text
    confirm = reader.get("/models/support/confirm?action=promote&env=staging&version=1.9.0")
    assert confirm.status_code == 403
    assert registry_state(registry, "support") == before
    for client in (operator, other, reader):
        client.close()


def test_bad_requests_are_pages_not_tracebacks(ui: UI):
    assert httpx.get(ui.url + "/runs/nope").status_code == 404
    assert httpx.get(ui.url + "/models/no_such_model").status_code == 404
    assert httpx.get(ui.url + "/models/..%2F..%2Fetc").status_code == 404
    confirm = httpx.get(ui.url + "/models/support/confirm?action=promote&env=BAD&version=1.9.0")
    assert confirm.status_code == 400 and "bad environment name" in confirm.text
    assert httpx.get(ui.url + "/evaluations/0000/chart.png").status_code == 404
    log = Path(ui.log).read_text()
    assert "Traceback" not in log, log[-3000:]


def test_the_cli_refuses_to_listen_beyond_this_machine_without_keys(tmp_path: Path):
    def ui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lfm.cli", "ui", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
            timeout=60,
        )

    done = ui("--host", "0.0.0.0")
    assert done.returncode == 1 and "listens beyond this machine" in done.stderr
    (tmp_path / "keys").write_text("read short\n")
    done = ui("--api-keys", "keys")
    assert done.returncode == 1 and "keys:1: a key needs at least 16 characters" in done.stderr
    assert "Traceback" not in done.stderr
    done = ui("--serve", "file:///etc/passwd")
    assert done.returncode == 2 and "http:// or https://" in done.stderr


@pytest.mark.parametrize(
    ("variable", "file"),
    [
        ("read:0123456789abcdef,operate:fedcba9876543210", None),
        (
            "admin: 0123456789abcdefXYZ ",
            "operate 0123456789abcdef\n# c\n\nread  aaaaaaaaaaaaaaaaaaaa\n",
        ),
        ("reader:0123456789abcdef", None),
        ("read:short", None),
        ("read0123456789abcdef", None),
        ("", "operate\n"),
        ("", "root 0123456789abcdef0\n"),
    ],
)
def test_keys_read_exactly_as_lfm_serve_reads_them(variable, file, tmp_path, monkeypatch):
    """The UI reads keys as lfm.serving.auth does (both through lfm.runtime.apikeys), error
    messages too."""
    from lfm.serving import auth as served
    from lfm.ui import auth as ours

    monkeypatch.setenv("LFM_SERVE_API_KEYS", variable)
    path = None
    if file is not None:
        path = tmp_path / "keys"
        path.write_text(file)

    def outcome(module, error):
        try:
            keys = module.Keys.load(path)
        except error as exc:
            return "error", str(exc)
        return "keys", keys._entries

    assert outcome(ours, ours.KeysError) == outcome(served, served.KeyError_)


def _hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def test_a_rollback_sent_twice_moves_once(ui: UI, registry: Path, workspace: Path):
    """The confirmation page posts the versions it showed: a double-click (or another move in
    between) is refused with a 409 page, instead of rolling back a second step."""
    from lfm.registry import open_registry
    from lfm.registry.prepare import prepare

    store = open_registry(str(registry))
    try:
        for version in ("1.0.0", "1.1.0", "1.2.0"):
            store.register(prepare(workspace / "bundles/quickstart_eval/output", name="twice",
                                   version=version))  # fmt: skip
            store.promote(f"twice:{version}", "staging")
    finally:
        store.close()
    client = httpx.Client(base_url=ui.url)
    confirm = client.get("/models/twice/confirm?action=rollback&env=staging")
    assert "will go back to <strong>1.1.0</strong> from 1.2.0" in confirm.text
    form = _hidden(confirm.text)
    assert (form["expected"], form["target"]) == ("1.2.0", "1.1.0")
    first = client.post("/models/twice/rollback", data=form)
    assert first.status_code == 303
    second = client.post("/models/twice/rollback", data=form)
    assert second.status_code == 409
    assert "now points at 1.1.0, not 1.2.0" in second.text and "nothing changed" in second.text
    state = registry_state(registry, "twice")
    assert state["pointers"]["staging"] == "1.1.0"
    assert [m[1] for m in state["moves"]].count("rollback") == 1
    store = open_registry(str(registry))
    try:
        move = store.history("twice", "staging")[-1]
        assert move.reason == "lfm ui, local"  # credited in the move itself
        assert store.audit("twice")[-1].detail == {"reason": "lfm ui, local"}
    finally:
        store.close()
    missing = client.post("/models/twice/rollback", data={"csrf": form["csrf"], "env": "staging"})
    assert missing.status_code == 400 and "open the rollback again" in missing.text


def test_requests_without_a_cookie_store_no_session(keyed_ui: UI):
    """Only a page with a form (the login form) stores a session for a visitor; /health,
    /static, a redirect to the login and an API refusal set no cookie."""
    for path in ("/health", "/static/app.css", "/models", "/api/runs/0/steps", "/nope"):
        answer = httpx.get(keyed_ui.url + path)
        assert "set-cookie" not in answer.headers, path
    assert "set-cookie" in httpx.get(keyed_ui.url + "/login").headers


def test_anonymous_sessions_never_end_a_login():
    from lfm.ui.auth import Caller
    from lfm.ui.sessions import Sessions

    sessions = Sessions(None, max_anonymous=3, max_logged_in=2)
    logged_in = sessions.login(Caller("read", "key:1"))
    visitor = sessions.visitor()
    assert sessions.find(visitor.id) is None and not visitor.check_csrf(visitor.csrf)
    for _ in range(50):
        sessions.keep(sessions.visitor())
    assert sessions.find(logged_in.id) is logged_in
    assert len(sessions._by_id) == 4  # three anonymous, one logged in


def test_the_next_page_after_login_stays_on_this_site():
    from lfm.ui.login import _next

    for hostile in ("/\t/evil.example", "/\n/evil.example", "/\r/evil.example", " //evil.example",
                    "//evil.example", "/\\evil.example", "https://evil.example/", "evil.example",
                    "/\x00/evil.example", "/\u2028/evil.example", "/ /evil.example"):  # fmt: skip
        assert _next(hostile) == "/models", repr(hostile)
    assert _next("/runs/abc?x=1") == "/runs/abc?x=1"


def test_keyless_ui_serves_every_loopback_name(ui: UI):
    """The names `lfm ui --host` accepts without keys are the names the app answers."""
    for host in ("127.0.0.2", "foo.localhost", "[::1]:8080", "localhost:1"):
        assert httpx.get(ui.url + "/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "127.0.0.1.evil.example", "[::1", ""):
        assert httpx.get(ui.url + "/health", headers={"host": host}).status_code == 400, host


def test_public_origin_lets_posts_through_a_proxy_that_rewrites_host(
    workspace: Path, registry: Path
):
    behind_proxy = {"host": "10.0.0.5:8080", "origin": "https://lfm.example.com"}
    keys = {"LFM_SERVE_API_KEYS": f"read:{READ_KEY}"}
    args = ("--runs", ".", "--registry", str(registry))
    for extra, status in (((), 403), (("--public-origin", "https://LFM.example.com/"), 303)):
        with running_ui(*args, *extra, cwd=workspace, env=keys) as server:
            client = httpx.Client(base_url=server.url)
            form = {"csrf": _token(client), "key": READ_KEY, "next": "/models"}
            # the cookie by hand: it is Secure under an https origin, and this is plain http
            cookie = f"lfm_ui_session={client.cookies['lfm_ui_session']}"
            answer = httpx.post(
                server.url + "/login", data=form, headers={**behind_proxy, "cookie": cookie}
            )
            assert answer.status_code == status, (extra, answer.text[-300:])


def test_a_mistyped_registry_is_refused_not_created(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", "ui", "--registry", "regsitry", "--port", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "regsitry holds no registry" in done.stderr, done.stderr
    assert not (tmp_path / "regsitry").exists()
    done = subprocess.run(
        [sys.executable, "-m", "lfm.cli", "ui", "--public-origin", "lfm.example.com"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--public-origin" in done.stderr


def test_latest_is_what_name_latest_resolves_to(ui: UI):
    """support has 1.9.0, 1.10.0 and 2.0.0-rc.1: support:latest is 1.10.0, a release."""
    page = httpx.get(ui.url + "/models").text
    row = re.search(r'href="/models/support">.*?</tr>', page, re.S)
    assert row and '<td class="latest">1.10.0</td>' in row.group(0)


def test_odd_files_are_pages_not_errors(odd_ui: UI):
    """A dataset report, evaluation results or lock file of an unexpected shape: the lists
    show the problem on its row, the detail pages say what is wrong; never a 500."""
    datasets = httpx.get(odd_ui.url + "/datasets")
    assert datasets.status_code == 200
    assert "dataset_report.json: `records` should be an object, not a list" in datasets.text
    ids = re.findall(r'href="/datasets/([0-9a-f]+)"', datasets.text)
    assert len(ids) == 1  # the hostile one; the broken one has no link
    evaluations = httpx.get(odd_ui.url + "/evaluations")
    assert evaluations.status_code == 200
    for found in re.findall(r'href="(/evaluations/[0-9a-f]+)"', evaluations.text):
        assert httpx.get(odd_ui.url + found).status_code == 200, found
    runs = httpx.get(odd_ui.url + "/runs")
    assert runs.status_code == 200
    for found in re.findall(r'href="(/runs/[0-9a-f]+)"', runs.text):
        assert httpx.get(odd_ui.url + found).status_code == 200, found
    log = Path(odd_ui.log).read_text()
    assert "Traceback" not in log, log[-3000:]
