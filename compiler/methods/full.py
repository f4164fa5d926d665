"""Full fine-tuning: every weight trains; no adapter."""

from __future__ import annotations

from .base import Method

METHODS = (Method("full", "Full fine-tuning: every weight is trained", (), 2e-5, lambda p: ()),)
