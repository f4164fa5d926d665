"""Runtime library imported by an emitted bundle's ``train.py``.

Kept import-light on purpose: ``import lfm.runtime`` must not pull in torch or
transformers, so the compiler and CLI can reference it cheaply. Import the
submodules (``data``, ``modeling``, ``training``, ``tiny``) where they are needed.
"""

# The version of lfm, one for every package in the distribution (pyproject.toml says the same;
# tests/test_packaging.py holds them together). It lives here, in the bottom layer, because every
# other package reads it: the compiler stamps it into bundles, the dataset cache keys on it.
__version__ = "0.1.0"
