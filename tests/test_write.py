"""Writing bundles: atomic, refuses foreign folders, keeps training output, detects staleness."""

from pathlib import Path

import pytest
from lfm.compiler.diagnostics import CompileError
from lfm.compiler.write import MANIFEST, check_bundle, with_manifest, write_bundle

FILES = with_manifest({"train.py": "print('hi')\n", "lfm.lock.json": "{}\n"})


def test_writes_files_and_a_manifest(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "lfm.lock.json", "train.py"]
    manifest = (out / MANIFEST).read_text().splitlines()
    assert [line.split("  ")[1] for line in manifest] == ["lfm.lock.json", "train.py"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    assert check_bundle(FILES, out) == []


def test_refuses_a_directory_that_is_not_a_bundle(tmp_path: Path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    with pytest.raises(CompileError, match="not an lfm bundle"):
        write_bundle(FILES, user)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]


def test_rewriting_keeps_training_output_and_drops_stale_files(tmp_path: Path):
    out = tmp_path / "b"
    old = with_manifest({**FILES, "old.txt": "gone\n"})
    write_bundle(old, out)
    (out / "output").mkdir()
    (out / "output" / "adapter.bin").write_text("weights")
    write_bundle(FILES, out)
    assert (out / "output" / "adapter.bin").read_text() == "weights"
    assert not (out / "old.txt").exists()


def test_a_failed_write_leaves_the_old_bundle_intact(tmp_path: Path, monkeypatch):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    import lfm.compiler.write as write

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write, "_swap_in", boom)
    with pytest.raises(CompileError, match="No space left"):
        write_bundle(with_manifest({"train.py": "new\n", "lfm.lock.json": "{}\n"}), out)
    assert (out / "train.py").read_text() == "print('hi')\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_check_reports_changed_missing_and_extra_files(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (out / "train.py").write_text("edited by hand\n")
    diffs = check_bundle(FILES, out)
    assert len(diffs) == 1 and "-edited by hand" in diffs[0] and "+print('hi')" in diffs[0]
    assert check_bundle(FILES, tmp_path / "missing")  # nothing on disk: stale
