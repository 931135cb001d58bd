"""Real test media for the event tests: videos of a real face (scikit-image's astronaut) crossing a background,
made by :func:`moodlens.samples.crossing_video`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data

from moodlens.samples import FRAME_H, FRAME_W, SPRITE_H, SPRITE_W, Crossing, background, crossing_video, head, sprite

__all__ = ["FRAME_H", "FRAME_W", "SPRITE_H", "SPRITE_W", "Crossing", "background", "face_sprite", "make_video"]


def _astronaut_head() -> np.ndarray:
    return head(np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]))


def face_sprite(mirror: bool = False, scale: float = 1.0) -> np.ndarray:
    """The astronaut's head and shoulders (public-domain photo), BGR, about SPRITE_W x SPRITE_H times ``scale``."""
    return sprite(_astronaut_head(), mirror, scale)


def make_video(path: Path, crossings: list[Crossing], frames: int, fps: float = 10.0,
               size: tuple[int, int] = (FRAME_W, FRAME_H)) -> Path:
    """An MJPG AVI where each crossing moves the astronaut's face across a textured background."""
    return crossing_video(path, crossings, frames, fps, size, head_bgr=_astronaut_head())
