"""Sample media made from the packaged public-domain astronaut photo (``moodlens/assets/astronaut.jpg``):
videos of people (her head and shoulders) crossing a textured background, for demos, checks and tests.
Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480
SPRITE_W, SPRITE_H = 110, 142


def astronaut() -> np.ndarray:
    """The packaged astronaut photo, BGR."""
    raw = (resources.files("moodlens") / "assets" / "astronaut.jpg").read_bytes()
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


def head(photo: np.ndarray | None = None) -> np.ndarray:
    """Head and shoulders of the astronaut photo (``photo``: that photo, BGR; default: the packaged one)."""
    return np.ascontiguousarray((astronaut() if photo is None else photo)[10:230, 140:310])


def sprite(head_bgr: np.ndarray, mirror: bool = False, scale: float = 1.0) -> np.ndarray:
    """``head_bgr`` resized to about SPRITE_W x SPRITE_H times ``scale``, mirrored if asked."""
    size = (round(SPRITE_W * scale), round(SPRITE_H * scale))
    face = cv2.resize(head_bgr, size, interpolation=cv2.INTER_AREA)
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


def crossing_video(path: Path, crossings: list[Crossing], frames: int, fps: float = 10.0,
                   size: tuple[int, int] = (FRAME_W, FRAME_H), head_bgr: np.ndarray | None = None) -> Path:
    """Write an MJPG AVI where each crossing moves the head sprite (``head_bgr``, default :func:`head`) across
    a textured background. Sprites and rows scale with the frame height (``Crossing.y`` is given for a
    480-pixel-high frame)."""
    width, height = size
    scale = height / FRAME_H
    bg = background(width, height)
    face = head() if head_bgr is None else head_bgr
    sprites = {False: sprite(face, False, scale), True: sprite(face, True, scale)}
    sprite_h, sprite_w = sprites[False].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG videos here")
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
