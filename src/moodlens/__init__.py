"""moodlens: facial-expression recognition with private, aggregate event feedback."""

from __future__ import annotations

from typing import Any

from moodlens.spec import EMOTIONS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "Analyzer", "Faces", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import moodlens` stays cheap (no OpenCV / ONNX Runtime until used).
    if name == "Analyzer":
        from moodlens.recognition.analyzer import Analyzer

        return Analyzer
    if name == "Faces":
        from moodlens.recognition.faces import Faces

        return Faces
    raise AttributeError(f"module 'moodlens' has no attribute {name!r}")
