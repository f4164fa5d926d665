"""Writing bundles: atomic, refuses foreign folders, keeps training output, detects staleness."""

import os
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


def test_training_output_survives_a_swap_that_fails_half_way(tmp_path: Path, monkeypatch):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (out / "output").mkdir()
    (out / "output" / "adapter.bin").write_text("weights")
    (out / "runs").mkdir()
    import lfm.compiler.write as write

    real_rename = os.rename
    moved = []

    def rename(src, dst):  # the first user entry moves, the second fails (e.g. a mount point)
        if Path(src).parent.name == ".b.lfm-old":
            moved.append(Path(src).name)
            if len(moved) == 2:
                raise OSError(18, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(write.os, "rename", rename)
    with pytest.raises(CompileError, match="safe in"):
        write_bundle(FILES, out)
    monkeypatch.setattr(write.os, "rename", real_rename)
    survivors = list(tmp_path.rglob("adapter.bin")) + list(tmp_path.rglob("runs"))
    assert len(survivors) == 2  # nothing the user made was deleted
    write_bundle(FILES, out)  # the next compile finishes the move
    assert (out / "output" / "adapter.bin").read_text() == "weights" and (out / "runs").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_an_interrupted_swap_is_undone_before_the_next_write(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (out / "output").mkdir()
    os.rename(out, tmp_path / ".b.lfm-old")  # killed between the two renames
    write_bundle(FILES, out)
    assert (out / "output").is_dir() and not (tmp_path / ".b.lfm-old").exists()


def test_check_ignores_manifest_paths_outside_the_bundle(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (tmp_path / "secret.txt").write_text("do not print me")
    manifest = out / MANIFEST
    manifest.write_text(manifest.read_text() + "0000  ../secret.txt\n0000  /etc/passwd\n")
    diffs = "".join(check_bundle(FILES, out))
    assert "do not print me" not in diffs  # the manifest diff names it; its content is never read


def test_the_current_directory_is_never_swapped_away(tmp_path: Path, monkeypatch):
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(CompileError, match="into the current directory"):
        write_bundle(FILES, Path("."))
    assert Path.cwd().exists() and not any(Path.cwd().iterdir())


def test_check_reports_changed_missing_and_extra_files(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (out / "train.py").write_text("edited by hand\n")
    diffs = check_bundle(FILES, out)
    assert len(diffs) == 1 and "-edited by hand" in diffs[0] and "+print('hi')" in diffs[0]
    assert check_bundle(FILES, tmp_path / "missing") == [
        f"{tmp_path / 'missing'} does not exist: nothing to compare\n"
    ]


def test_a_users_file_beside_generated_ones_survives_a_recompile(tmp_path: Path):
    """Only files the manifest lists *and* whose content still matches are lfm's to drop."""
    out = tmp_path / "b"
    bundle = with_manifest({**FILES, "k8s/job.yaml": "kind: Job\n"})
    write_bundle(bundle, out)
    (out / "k8s" / "mine.yaml").write_text("kind: ConfigMap\n")
    write_bundle(bundle, out)
    assert (out / "k8s" / "mine.yaml").read_text() == "kind: ConfigMap\n"
    assert (out / "k8s" / "job.yaml").read_text() == "kind: Job\n"


def test_a_line_added_to_the_manifest_proves_nothing(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (out / "output").mkdir()
    (out / "output" / "adapter.bin").write_text("weights")
    with (out / MANIFEST).open("a") as manifest:
        manifest.write("0000  output/adapter.bin\n" + "0000  output\n")
    write_bundle(FILES, out)
    assert (out / "output" / "adapter.bin").read_text() == "weights"


def test_a_hand_edited_generated_file_is_kept_and_named(tmp_path: Path):
    out = tmp_path / "b"
    write_bundle(FILES, out)
    (out / "train.py").write_text("print('my edit')\n")
    assert write_bundle(FILES, out) == ["train.py.edited"]
    assert (out / "train.py.edited").read_text() == "print('my edit')\n"  # nothing lost
    assert (out / "train.py").read_text() == "print('hi')\n"
    assert write_bundle(FILES, out) == []  # the next compile goes on as usual
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_output_that_is_a_symbolic_link_is_refused(tmp_path: Path):
    target = tmp_path / "real"
    write_bundle(FILES, target)
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    with pytest.raises(CompileError, match="symbolic link"):
        write_bundle(FILES, link)
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, "lfm.lock.json", "train.py"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
