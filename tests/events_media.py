"""Real test media for the event tests: videos of a real face (skimage's astronaut) crossing a background."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

FRAME_W, FRAME_H = 640, 480
SPRITE_W, SPRITE_H = 110, 142


def face_sprite(mirror: bool = False, scale: float = 1.0) -> np.ndarray:
    """The astronaut's head and shoulders (public-domain photo), BGR, about SPRITE_W x SPRITE_H times ``scale``."""
    face = np.ascontiguousarray(skimage.data.astronaut()[10:230, 140:310, ::-1])
    size = (round(SPRITE_W * scale), round(SPRITE_H * scale))
    face = cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(face[:, ::-1]) if mirror else face


def background(width: int = FRAME_W, height: int = FRAME_H, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = rng.integers(60, 200, (height, width, 3)).astype(np.uint8)
    return cv2.GaussianBlur(bg, (0, 0), 6)


@dataclass(frozen=True)
class Crossing:
    """One person walking across the frame from ``start`` to ``end`` (exclusive) at row ``y``."""

    start: int
    end: int
    y: int = 40
    left_to_right: bool = True
    mirror: bool = False
    #: Frames [a, b) during which the person is hidden (occluded) while still walking.
    hidden: tuple[int, int] | None = None

    def visible(self, frame: int) -> bool:
        return self.start <= frame < self.end and not (self.hidden and self.hidden[0] <= frame < self.hidden[1])


def make_video(path: Path, crossings: list[Crossing], frames: int, fps: float = 10.0,
               size: tuple[int, int] = (FRAME_W, FRAME_H)) -> Path:
    """Write an MJPG AVI where each crossing moves a face sprite across a textured background.

    Sprites and rows scale with the frame height (``Crossing.y`` is given for a 480-pixel-high frame).
    """
    width, height = size
    scale = height / FRAME_H
    bg = background(width, height)
    sprites = {False: face_sprite(False, scale), True: face_sprite(True, scale)}
    sprite_h, sprite_w = sprites[False].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG videos here"
    travel = width - sprite_w - 40
    for f in range(frames):
        img = bg.copy()
        for c in crossings:
            if c.visible(f):
                t = (f - c.start) / max(c.end - c.start - 1, 1)
                x = 20 + int(round(travel * (t if c.left_to_right else 1 - t)))
                y = round(c.y * scale)
                img[y:y + sprite_h, x:x + sprite_w] = sprites[c.mirror]
        writer.write(img)
    writer.release()
    return path
