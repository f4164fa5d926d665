"""What a wheel ships: every template and schema file matches the package-data globs."""

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_data_file_is_packaged():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = config["package-dir"]
    for package, patterns in config["package-data"].items():
        folder = REPO / folders[package]
        for path in folder.iterdir():
            if path.is_file() and path.suffix != ".py" and path.name != "__pycache__":
                assert any(fnmatch.fnmatch(path.name, p) for p in patterns), (
                    f"{path} is not packaged"
                )


def test_every_package_folder_is_listed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in config["package-dir"].items():
        assert package in config["packages"]
        assert (REPO / folder / "__init__.py").is_file(), folder
