"""Real test media for the event tests: videos of a real face (skimage's astronaut) crossing a background."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

FRAME_W, FRAME_H = 640, 480
SPRITE_W, SPRITE_H = 110, 142


def face_sprite(mirror: bool = False) -> np.ndarray:
    """The astronaut's head and shoulders (public-domain photo), BGR, SPRITE_W x SPRITE_H."""
    face = np.ascontiguousarray(skimage.data.astronaut()[10:230, 140:310, ::-1])
    face = cv2.resize(face, (SPRITE_W, SPRITE_H), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(face[:, ::-1]) if mirror else face


def background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = rng.integers(60, 200, (FRAME_H, FRAME_W, 3)).astype(np.uint8)
    return cv2.GaussianBlur(bg, (0, 0), 6)


@dataclass(frozen=True)
class Crossing:
    """One person walking across the frame from ``start`` to ``end`` (exclusive) at row ``y``."""

    start: int
    end: int
    y: int = 40
    left_to_right: bool = True
    mirror: bool = False


def make_video(path: Path, crossings: list[Crossing], frames: int, fps: float = 10.0) -> Path:
    """Write an MJPG AVI where each crossing moves a face sprite across a textured background."""
    bg = background()
    sprites = {False: face_sprite(False), True: face_sprite(True)}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (FRAME_W, FRAME_H))
    assert writer.isOpened(), "OpenCV cannot write MJPG videos here"
    travel = FRAME_W - SPRITE_W - 40
    for f in range(frames):
        img = bg.copy()
        for c in crossings:
            if c.start <= f < c.end:
                t = (f - c.start) / max(c.end - c.start - 1, 1)
                x = 20 + int(round(travel * (t if c.left_to_right else 1 - t)))
                img[c.y:c.y + SPRITE_H, x:x + SPRITE_W] = sprites[c.mirror]
        writer.write(img)
    writer.release()
    return path
