"""Quality control: per-record checks (:mod:`.checks`), duplicates (:mod:`.dedup`), metrics."""

from .checks import Item, QualitySettings, assess
from .dedup import Deduplicator

__all__ = ["Deduplicator", "Item", "QualitySettings", "assess"]
