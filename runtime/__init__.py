"""Runtime library imported by an emitted bundle's ``train.py``.

Kept import-light on purpose: ``import lfm.runtime`` must not pull in torch or
transformers, so the compiler and CLI can reference it cheaply. Import the
submodules (``data``, ``modeling``, ``training``, ``tiny``) where they are needed.
"""
