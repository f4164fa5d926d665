"""Names, semantic versions and references: validated, ordered, one-line errors."""

import pytest
from lfm.registry.errors import RegistryError
from lfm.registry.references import (
    Reference,
    check_name,
    check_version,
    latest_of,
    parse_reference,
    sort_versions,
)


def test_versions_order_semantically_not_as_text():
    assert sort_versions(["1.10.0", "1.9.0", "1.2.0", "2.0.0-rc.1", "2.0.0"]) == [
        "1.2.0",
        "1.9.0",
        "1.10.0",
        "2.0.0-rc.1",
        "2.0.0",
    ]


def test_latest_prefers_releases_over_prereleases():
    assert latest_of(["1.0.0", "1.1.0-rc.1"]) == "1.0.0"
    assert latest_of(["1.1.0-rc.1", "1.1.0-rc.2"]) == "1.1.0-rc.2"
    assert latest_of([]) is None


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0.0", "one", "", "01.0.0"])
def test_bad_versions_are_refused(text):
    with pytest.raises(RegistryError, match="not a semantic version"):
        check_version(text)


@pytest.mark.parametrize("text", ["has space", "a/b", "x:y", "@prod", "", "-dash", "a" * 129])
def test_bad_names_are_refused(text):
    with pytest.raises(RegistryError, match="bad model name"):
        check_name(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mqa", Reference("mqa")),
        ("mqa:latest", Reference("mqa")),
        ("mqa:1.2.0", Reference("mqa", version="1.2.0")),
        ("mqa@production", Reference("mqa", env="production")),
    ],
)
def test_references(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["mqa:1.2", "mqa@Prod!", "mqa:1.0.0@production", "bad name"])
def test_bad_references(text):
    with pytest.raises(RegistryError):
        parse_reference(text)
