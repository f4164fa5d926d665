"""Reading a run's files as the Runs page does (partial lines, rewritten files, NaN losses,
FIFOs and links), scraped metrics, and the browser installer."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from lfm.ui import files, runs
from lfm.ui.serving_status import _quantile


def _run(tmp_path: Path) -> runs.Run:
    output = tmp_path / "bundle" / "output"
    output.mkdir(parents=True)
    return runs.Run("id", output, None, "bundle")


def _line(step: int, loss: float) -> str:
    return json.dumps({"step": step, "loss": loss, "learning_rate": 0.001}) + "\n"


def test_only_whole_lines_are_read_and_the_offset_moves_past_them(tmp_path):
    run = _run(tmp_path)
    steps = run.output / files.STEPS_FILE
    steps.write_text(_line(1, 2.0) + _line(2, 1.5) + '{"step": 3, "lo')
    first = runs.read_steps(run, 0)
    assert [p["step"] for p in first["points"]] == [1, 2] and not first["reset"]
    with steps.open("a") as handle:
        handle.write('ss": 1.2}\n')
    second = runs.read_steps(run, first["offset"])
    assert [p["step"] for p in second["points"]] == [3]
    assert runs.read_steps(run, second["offset"])["points"] == []


def test_eval_loss_shows_while_the_run_trains(tmp_path):
    """Before metrics.json exists, eval loss comes from evals.jsonl as evaluations happen."""
    run = _run(tmp_path)
    (run.output / files.STEPS_FILE).write_text(_line(1, 2.0) + _line(2, 1.5))
    evals = run.output / runs.EVALS_FILE
    evals.write_text(json.dumps({"step": 2, "epoch": 0.5, "eval_loss": 1.7}) + '\n{"step": 4')
    assert runs.eval_losses(run) == [{"step": 2, "epoch": 0.5, "eval_loss": 1.7}]


def test_a_rewritten_file_starts_again_from_the_beginning(tmp_path):
    """A resumed run drops the steps its checkpoint did not reach: the chart starts over."""
    run = _run(tmp_path)
    steps = run.output / files.STEPS_FILE
    steps.write_text(_line(1, 2.0) + _line(2, 1.5) + _line(3, 1.2))
    offset = runs.read_steps(run, 0)["offset"]
    steps.write_text(_line(1, 2.0))
    again = runs.read_steps(run, offset)
    assert again["reset"] and [p["step"] for p in again["points"]] == [1]


def test_a_nan_loss_and_damaged_lines_do_not_break_the_page(tmp_path):
    run = _run(tmp_path)
    (run.output / files.STEPS_FILE).write_text(
        _line(1, 2.0) + "not json\n" + '["a list"]\n' + _line(2, float("nan"))
    )
    answer = runs.read_steps(run, 0)
    assert [(p["step"], p["loss"]) for p in answer["points"]] == [(1, 2.0), (2, None)]
    json.dumps(answer, allow_nan=False)  # what the browser gets is strict JSON
    assert runs.last_point(run)["step"] == 2


def test_status_follows_the_files(tmp_path):
    run = _run(tmp_path)
    assert runs.status(run) == "not started"
    (run.output / files.STEPS_FILE).write_text(_line(1, 2.0))
    assert runs.status(run) == "running"
    (run.output / files.SUMMARY_FILE).write_text(json.dumps({"global_step": 1}))
    assert runs.status(run) == "finished"


def test_latency_quantiles_from_histogram_buckets():
    buckets = {0.1: 2.0, 0.5: 6.0, 1.0: 10.0, math.inf: 10.0}
    assert _quantile(buckets, 0.5) == 0.1 + 0.4 * (3 / 4)
    assert _quantile(buckets, 0.95) == 0.5 + 0.5 * (3.5 / 4)
    assert _quantile({}, 0.5) is None


def _quickly(call, seconds: float = 5.0):
    """``call()``'s answer, failing (not hanging the run) when it takes longer."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def test_a_fifo_or_a_link_is_never_opened_for_reading(tmp_path):
    """A FIFO named metrics.jsonl would hang open(); a link to /dev/zero would fill memory;
    a link to a real file elsewhere is not followed either."""
    run = _run(tmp_path)
    steps = run.output / files.STEPS_FILE
    os.mkfifo(steps)
    assert _quickly(lambda: runs.read_steps(run, 0))["points"] == []
    assert _quickly(lambda: runs.last_point(run)) is None
    steps.unlink()
    outside = tmp_path / "outside.jsonl"
    outside.write_text(_line(1, 2.0))
    for target in ("/dev/zero", str(outside)):
        steps.unlink(missing_ok=True)
        steps.symlink_to(target)
        assert _quickly(lambda: runs.read_steps(run, 0))["points"] == []
        assert _quickly(lambda: runs.last_point(run)) is None
    alerts = run.output / files.ALERTS_FILE
    alerts.symlink_to("/dev/zero")
    assert _quickly(lambda: runs.alerts(run)) == []
    lock_bundle = tmp_path / "bundle"
    os.mkfifo(lock_bundle / files.LOCK_FILE)
    locked = runs.Run("id", run.output, lock_bundle, "bundle")
    data, problem = _quickly(lambda: runs.lock(locked))
    assert data is None and "not a regular file" in problem
    with pytest.raises(files.Unreadable, match="symbolic link"):
        files.read_json(steps)


def test_a_linked_checkpoint_folder_is_not_read(tmp_path):
    run = _run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    history = {"log_history": [{"step": 5, "eval_loss": 1.0}]}
    (elsewhere / "trainer_state.json").write_text(json.dumps(history))
    (run.output / "checkpoint-5").symlink_to(elsewhere, target_is_directory=True)
    assert runs.eval_losses(run) == []
    real = run.output / "checkpoint-3"
    real.mkdir()
    (real / "trainer_state.json").write_text(json.dumps(history))
    assert runs.eval_losses(run) == [{"step": 5, "epoch": None, "eval_loss": 1.0}]


def test_alerts_are_read_from_a_bounded_tail(tmp_path):
    run = _run(tmp_path)
    line = json.dumps({"alert": "loss_spike", "step": 1, "message": "x" * 200}) + "\n"
    count = (runs.MAX_ALERT_BYTES // len(line)) * 3  # three times what one read takes
    (run.output / files.ALERTS_FILE).write_text(line * count + '{"alert": "last", "step": 2}\n')
    found = runs.alerts(run)
    assert len(found) == runs.MAX_ALERTS and found[-1]["alert"] == "last"


def test_a_line_longer_than_a_chunk_is_skipped_not_stalled_on(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MAX_CHUNK_BYTES", 256)
    monkeypatch.setattr(runs, "MAX_LINE_BYTES", 128)
    run = _run(tmp_path)
    long_line = json.dumps({"step": 2, "loss": 1.0, "junk": "x" * 2000}) + "\n"
    (run.output / files.STEPS_FILE).write_text(_line(1, 2.0) + long_line + _line(3, 1.0))
    offset, identity, seen = 0, "", []
    for _ in range(10):
        answer = runs.read_steps(run, offset, identity)
        seen += [p["step"] for p in answer["points"]]
        if answer["offset"] == offset:
            break
        offset, identity = answer["offset"], answer["identity"]
    assert seen == [1, 3]
    assert offset == (run.output / files.STEPS_FILE).stat().st_size


def test_a_replaced_file_that_grew_past_the_offset_starts_again(tmp_path):
    """A resumed run writes a new metrics.jsonl and renames it over the old: even when the new
    one is already longer than the old offset, the answer starts again with reset."""
    run = _run(tmp_path)
    steps = run.output / files.STEPS_FILE
    steps.write_text(_line(1, 2.0) + _line(2, 1.5) + _line(3, 1.2))
    first = runs.read_steps(run, 0)
    replacement = run.output / ".metrics.jsonl.tmp"
    replacement.write_text("".join(_line(s, 0.5) for s in (1, 2, 10, 11, 12, 13)))
    os.replace(replacement, steps)
    again = runs.read_steps(run, first["offset"], first["identity"])
    assert again["reset"] and [p["step"] for p in again["points"]] == [1, 2, 10, 11, 12, 13]
    same = runs.read_steps(run, again["offset"], again["identity"])
    assert not same["reset"] and same["points"] == []


def test_a_found_run_is_remembered_by_its_id(tmp_path, monkeypatch):
    (tmp_path / "b" / "output").mkdir(parents=True)
    (tmp_path / "b" / "output" / files.STEPS_FILE).write_text(_line(1, 1.0))
    found = runs.find(tmp_path, runs.all_runs(tmp_path)[0].id)
    monkeypatch.setattr(runs, "all_runs", lambda root: pytest.fail("searched the tree again"))
    assert runs.find(tmp_path, found.id) == found


def test_scraped_metrics_with_nan_or_a_bad_bucket_bound_are_guarded():
    from lfm.ui.files import finite
    from lfm.ui.serving_status import _by_model, _samples

    text = (
        "# TYPE lfm_requests_total counter\n"
        'lfm_requests_total{model="m",status="200"} NaN\n'
        'lfm_requests_total{model="m",status="200"} 3\n'
        "# TYPE lfm_request_seconds histogram\n"
        'lfm_request_seconds_bucket{model="m",le="abc"} 1\n'
        'lfm_request_seconds_bucket{model="m",le="0.5"} 2\n'
        'lfm_request_seconds_bucket{model="m",le="+Inf"} 3\n'
        'lfm_request_seconds_sum{model="m"} +Inf\n'
        'lfm_request_seconds_count{model="m"} 3\n'
    )
    rows = _by_model(_samples(text))
    json.dumps(finite(rows), allow_nan=False)
    assert rows["m"]["requests"] == 3 and rows["m"]["p50"] is not None


def test_a_redirect_never_carries_the_serve_key(tmp_path):
    """--serve answering with a redirect: refused, and the key never reaches the other end."""
    import http.server
    import threading

    from lfm.ui.serving_status import Scraper

    seen: list[str | None] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(Elsewhere):
        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{other.server_port}{self.path}")
            self.end_headers()

    first = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (other, first):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status = Scraper(f"http://127.0.0.1:{first.server_port}", "secret-key-0123456789").status()
    finally:
        for server in (other, first):
            server.shutdown()
    assert "HTTP 302" in status["error"] and "redirect" in status["error"]
    assert seen == []


def test_install_browser_warns_and_succeeds_without_apt(tmp_path):
    """Not root or no apt-get (a developer's machine): a warning and exit 0, so `make check`
    goes on and the browser tests skip, saying why."""
    import shutil
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").symlink_to(shutil.which("id"))
    script = Path(__file__).with_name("install_browser.sh")
    done = subprocess.run(
        [shutil.which("bash"), str(script)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "browser tests in tests/ui will skip" in done.stderr
