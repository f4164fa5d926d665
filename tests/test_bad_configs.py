"""Bad configs: one file per class of user mistake, and the exact diagnostics lfm prints for it.

Each `tests/bad_configs/<name>.yaml` (or `.json`) holds one kind of mistake; YAML cases say which
in their first line. `tests/bad_configs/<name>.expected` is the exact stderr of

    lfm validate tests/bad_configs/<name>.yaml

run from the repository root. The tests run the real CLI in-process (click's CliRunner) and check,
for every case, that `lfm validate` exits 1 with exactly the expected stderr, one line per problem
and no traceback, and that `lfm compile -o DIR` exits 1 and leaves neither DIR nor a temporary
`.DIR.lfm-*` directory behind.

After an intended change to a message, rewrite every .expected file from the current output and
review the diff before committing it:

    python tests/test_bad_configs.py --regen
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lfm.cli import lfm

REPO = Path(__file__).resolve().parent.parent
BAD = REPO / "tests" / "bad_configs"
REGEN = "python tests/test_bad_configs.py --regen"

# One line per problem: `file:line:col: level: message` (or `level: message` when no place applies),
# then the count line.
DIAGNOSTIC = re.compile(r"^(\S+:(\d+):(\d+): )?(error|warning|note): ")
COUNT = re.compile(r"^(\d+) errors?$")

# Cases whose file cannot start with a comment line (the comment would change what they test).
NO_COMMENT = {"empty_file.yaml", "not_utf8.yaml"}


def _cases() -> list[Path]:
    return sorted(p for p in BAD.iterdir() if p.suffix in (".yaml", ".json"))


CASES = _cases()


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _expected_path(config: Path) -> Path:
    return config.with_suffix(".expected")


def _invoke(args: list[str]) -> Result:
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart by default
    return runner.invoke(lfm, args, catch_exceptions=True)


def _assert_clean_failure(result: Result, what: str) -> None:
    """Exit status 1 through sys.exit, not an uncaught exception, and no traceback printed."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"{what} raised instead of reporting:\n"
            + "".join(traceback.format_exception(*result.exc_info))
        )
    assert result.exit_code == 1, f"{what} exited {result.exit_code}, expected 1:\n{result.output}"
    for stream in (result.stdout, result.stderr, result.output):
        assert "Traceback" not in stream, f"{what} printed a traceback:\n{stream}"


def _assert_one_line_per_problem(stderr: str, what: str) -> None:
    lines = stderr.splitlines()
    assert lines, f"{what} printed nothing on stderr"
    *diagnostics, count = lines
    assert COUNT.match(count), f"{what}: last stderr line is not the error count: {count!r}"
    places = []
    for line in diagnostics:
        match = DIAGNOSTIC.match(line)
        assert match, f"{what}: stderr line is not one diagnostic: {line!r}"
        places.append((int(match[2]), int(match[3])) if match[1] else (1 << 30, 0))
    errors = sum(1 for line in diagnostics if DIAGNOSTIC.match(line)[4] == "error")
    assert errors >= 1, f"{what} reports no error"
    assert int(COUNT.match(count)[1]) == errors, (
        f"{what}: count line says {count!r}, {errors} printed"
    )
    assert places == sorted(places), (
        f"{what}: diagnostics are not sorted by line and column:\n{stderr}"
    )


@pytest.mark.parametrize("config", CASES, ids=lambda p: p.name)
def test_validate_reports_expected_diagnostics(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    what = f"lfm validate {_rel(config)}"
    result = _invoke(["validate", _rel(config)])
    _assert_clean_failure(result, what)
    assert result.stdout == "", f"{what} printed on stdout:\n{result.stdout}"
    _assert_one_line_per_problem(result.stderr, what)
    expected = _expected_path(config)
    assert expected.is_file(), f"{_rel(expected)} is missing; write it with: {REGEN}"
    want = expected.read_text(encoding="utf-8")
    assert result.stderr == want, (
        f"{what}: stderr differs from {_rel(expected)}. If the new output is intended, "
        f"review it and run: {REGEN}"
    )


@pytest.mark.parametrize("config", CASES, ids=lambda p: p.name)
def test_compile_fails_and_writes_nothing(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    bundle = tmp_path / "bundle"
    what = f"lfm compile {_rel(config)} -o {bundle}"
    result = _invoke(["compile", _rel(config), "-o", str(bundle)])
    _assert_clean_failure(result, what)
    _assert_one_line_per_problem(result.stderr, what)
    assert not bundle.exists(), f"{what} left {bundle} behind"
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [], f"{what} left files next to the bundle: {leftovers}"


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    missing = "tests/bad_configs/does_not_exist.yaml"
    assert not (REPO / missing).exists()
    result = _invoke(["validate", missing])
    _assert_clean_failure(result, f"lfm validate {missing}")
    assert result.stderr == f"error: config file not found: {missing}\n1 error\n"

    bundle = tmp_path / "bundle"
    result = _invoke(["compile", missing, "-o", str(bundle)])
    _assert_clean_failure(result, f"lfm compile {missing}")
    assert result.stderr == f"error: config file not found: {missing}\n1 error\n"
    assert list(tmp_path.iterdir()) == []


GOOD_CONFIG = """\
model_config:
  name: good
  base_model: meta-llama/Llama-2-7b-hf
  dataset:
    source:
      path: ./train.jsonl
"""


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (
            p.read_bytes() if p.is_file() else b"<dir>",
            p.stat().st_mtime_ns,
        )
        for p in sorted(root.rglob("*"))
    }


def test_compile_refuses_a_folder_that_is_not_a_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("good.yaml").write_text(GOOD_CONFIG, encoding="utf-8")
    Path("train.jsonl").write_text('{"text": "hello"}\n', encoding="utf-8")
    mine = Path("mine")
    (mine / "notes").mkdir(parents=True)
    (mine / "thesis.txt").write_text("two years of work\n", encoding="utf-8")
    (mine / "notes" / "todo.md").write_text("- back up\n", encoding="utf-8")
    before = _snapshot(tmp_path)

    result = _invoke(["compile", "good.yaml", "-o", "mine"])

    _assert_clean_failure(result, "lfm compile good.yaml -o mine")
    _assert_one_line_per_problem(result.stderr, "lfm compile good.yaml -o mine")
    assert result.stderr == (
        "error: mine exists and is not an lfm bundle (no lfm.lock.json); refusing to overwrite it; "
        "choose another -o/--output directory or remove it yourself\n"
        "1 error\n"
    )
    assert _snapshot(tmp_path) == before, "the user's folder (or its surroundings) changed"


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 30, f"only {len(CASES)} bad configs"
    stems = [p.stem for p in CASES]
    duplicated = sorted({s for s in stems if stems.count(s) > 1})
    assert not duplicated, f"two cases share a .expected file: {duplicated}"
    orphans = sorted(p.name for p in BAD.glob("*.expected") if p.stem not in stems)
    assert not orphans, f"expected files without a config: {orphans}"
    others = sorted(
        p.name for p in BAD.iterdir() if p.suffix not in (".yaml", ".json", ".expected")
    )
    assert not others, f"unexpected files in tests/bad_configs: {others}"


@pytest.mark.parametrize("config", [p for p in CASES if p.suffix == ".yaml"], ids=lambda p: p.name)
def test_yaml_case_says_what_it_shows(config: Path) -> None:
    if config.name in NO_COMMENT:
        return
    first = config.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 10, (
        f"{config.name}: first line must say the mistake"
    )


def test_special_cases_are_still_special() -> None:
    assert (BAD / "empty_file.yaml").read_bytes() == b""
    raw = (BAD / "not_utf8.yaml").read_bytes()
    assert len(raw) < 200
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def _regen() -> int:
    os.chdir(REPO)
    changed = 0
    for config in _cases():
        result = _invoke(["validate", _rel(config)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            print(f"WARNING {config.name}: raised {result.exception!r}", file=sys.stderr)
        elif result.exit_code != 1:
            print(f"WARNING {config.name}: exit status {result.exit_code}, not 1", file=sys.stderr)
        expected = _expected_path(config)
        old = expected.read_text(encoding="utf-8") if expected.exists() else None
        if old != result.stderr:
            expected.write_text(result.stderr, encoding="utf-8", newline="\n")
            changed += 1
            print(f"wrote {_rel(expected)}")
    for orphan in BAD.glob("*.expected"):
        if not any(orphan.stem == c.stem for c in _cases()):
            print(f"WARNING {_rel(orphan)} has no config; remove it", file=sys.stderr)
    print(f"{changed} of {len(_cases())} expected files changed; review them with a diff")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        print(f"usage: {REGEN}", file=sys.stderr)
        sys.exit(2)
    sys.exit(_regen())
