"""Q&A generators behind one interface; :func:`build_generator` picks one from settings."""

from .base import GenerationSettings, Generator, build_generator

__all__ = ["GenerationSettings", "Generator", "build_generator"]
