"""register never stores what a link in the model folder points to outside it (issue 17)."""

import json
import os
from pathlib import PurePosixPath

import pytest
from hostile_links import LINKS, SECRET, holds_secret, plant_links


@pytest.fixture
def hostile_adapter(make_adapter_copy, adapter_dir, tmp_path):
    """A real adapter whose folder also holds links out of it, and one link inside it."""
    model = make_adapter_copy(adapter_dir, tmp_path / "model", "links")
    plant_links(model, tmp_path / "outside")
    (model / "README-link.md").symlink_to("README.md")  # inside the folder, to a file there
    (model / "tokenizer").mkdir()
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return model


def test_register_skips_links_out_of_the_folder_and_says_so(
    cli, hostile_adapter, registry_env, tmp_path
):
    done = cli("register", "--model", str(hostile_adapter), "--name", "mqa", "--version", "1.0.0")
    warned = done.stderr
    for name in LINKS:
        assert f"warning: skipped {hostile_adapter / name}: symbolic link to" in warned
    assert f"{tmp_path / 'outside' / 'passwd'} (outside {hostile_adapter})" in warned
    assert "Traceback" not in done.output

    stored = {f["path"] for f in json.loads(cli("show", "mqa:1.0.0", "--json").output)["files"]}
    assert not stored & {"passwd.txt", "gone.txt", "private/notes.txt"}
    assert "README-link.md" in stored  # a link to a file inside is that file
    assert holds_secret(registry_env) == []  # no blob holds it, the database does not name it

    cli("pull", "mqa:1.0.0", "--to", str(tmp_path / "pulled"))
    assert holds_secret(tmp_path / "pulled") == []
    pulled = tmp_path / "pulled" / "README-link.md"
    assert not pulled.is_symlink() and pulled.read_text() == "adapter links\n"


def test_a_folder_of_links_out_of_it_registers_nothing(cli, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    plant_links(model, tmp_path / "outside")
    done = cli("register", "--model", str(model), "--name", "m", "--version", "1.0.0", expect=1)
    assert "holds no files to register (3 symbolic links skipped" in done.output
    assert SECRET not in done.output and "Traceback" not in done.output


def test_mlflow_uploads_only_the_listed_files(hostile_adapter):
    """The MLflow backend uploads what register listed, file by file, never the whole folder
    (MLflow's own folder upload copies what links point to)."""
    from types import SimpleNamespace

    from lfm.registry.mlflow_backend import MlflowRegistry
    from lfm.registry.prepare import prepare

    request = prepare(hostile_adapter, name="m", version="1.0.0")
    uploaded = set()

    class Client:
        def get_experiment_by_name(self, name):
            return SimpleNamespace(experiment_id="1")

        def create_run(self, experiment_id, **kwargs):
            return SimpleNamespace(info=SimpleNamespace(run_id="run"))

        def log_artifact(self, run_id, local_path, artifact_path=None):
            if artifact_path is not None:  # None: lfm's manifest, at the run's root
                uploaded.add((os.path.relpath(local_path, hostile_adapter), artifact_path))

        def log_artifacts(self, *args, **kwargs):
            raise AssertionError("the whole folder must not be uploaded")

        def log_metric(self, *args):
            pass

        def set_terminated(self, run_id):
            pass

    store = MlflowRegistry("http://mlflow.invalid")
    store.client = Client()
    store._upload(request, "manifest")
    assert uploaded == {
        (f.path, PurePosixPath("model", f.path).parent.as_posix()) for f in request.files
    }
    assert not {path for path, _ in uploaded} & {"passwd.txt", "gone.txt", "private/notes.txt"}
