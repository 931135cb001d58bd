"""What ``moodlens analyze`` is given: the images to analyse, and every other file it found, with why it is skipped.

Folders are searched recursively. A video (by its name) is skipped with a pointer to ``moodlens video``;
any other file in a folder that is not named like an image is skipped as not an image. Files named
explicitly are always tried as images (a wrong name is not a reason to refuse a file), except videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moodlens.recognition.imageio import IMAGE_SUFFIXES

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                                            ".wmv", ".flv", ".3gp", ".mts", ".m2ts", ".ts", ".ogv", ".y4m"})
VIDEO_REASON = "a video: analyse it with `moodlens video FILE`"
NOT_IMAGE_REASON = "not an image file (by its name)"


@dataclass(frozen=True)
class Input:
    """One file found: ``skip`` is ``None`` for an image to analyse, else the kind of skip (``video``,
    ``not_image``) and ``reason`` says why."""

    path: Path
    skip: str | None = None
    reason: str = ""


def find_inputs(paths: list[str | Path] | tuple[str | Path, ...]) -> list[Input]:
    """Every file named or found in a folder named, in a stable order, each marked image or skipped."""
    found: list[Input] = []
    for p in map(Path, paths):
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            suffix = f.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                found.append(Input(f, "video", VIDEO_REASON))
            elif p.is_dir() and suffix not in IMAGE_SUFFIXES:
                found.append(Input(f, "not_image", NOT_IMAGE_REASON))
            else:
                found.append(Input(f))  # missing or broken files are reported by the loader
    return found
