"""moodlens: facial-expression recognition with private, aggregate event feedback."""

from __future__ import annotations

from moodlens.spec import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "__version__"]
