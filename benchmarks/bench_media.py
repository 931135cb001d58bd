"""Benchmark videos: 1-3 real faces (scikit-image's public-domain astronaut) moving over a textured background,
written as H.264 MP4 with PyAV (what real videos are), with the true face box of every face in every frame."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

#: Face widths (px) of the up-to-three faces, as a fraction of the frame width.
FACE_WIDTHS = (0.11, 0.075, 0.05)


def head() -> np.ndarray:
    """The astronaut's head and shoulders, BGR."""
    return np.ascontiguousarray(skimage.data.astronaut()[10:230, 140:310, ::-1])


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(60, 200, (height, width, 3)).astype(np.uint8), (0, 0), 6)


def face_box_in_head(detect) -> tuple[float, float, float, float]:  # noqa: ANN001 - detect(bgr) -> Faces
    """The detector's face box on the head sprite shown large, relative to the sprite (x, y, w, h)."""
    sprite = cv2.resize(head(), None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    h, w = sprite.shape[:2]
    canvas = np.full((2 * h, 2 * w, 3), 128, np.uint8)
    canvas[h // 2:h // 2 + h, w // 2:w // 2 + w] = sprite
    found = detect(canvas)
    b = found.boxes[int(np.argmax(found.detector_scores))].astype(float)
    return (b[0] - w // 2) / w, (b[1] - h // 2) / h, b[2] / w, b[3] / h


def write_faces_video(path: Path, frames: int, size: tuple[int, int], relative_face: tuple[float, ...],
                      fps: float = 30.0, seed: int = 0) -> list[list[tuple[float, float, float, float]]]:
    """Write ``frames`` frames: 1, 2, then 3 faces (changing every third of the video), each moving 3 px a
    frame (per 640 px of width); returns the true face boxes of every frame."""
    width, height = size
    bg = background(width, height, seed)
    rx, ry, rw, rh = relative_face
    sprites = []
    for k, fw in enumerate(FACE_WIDTHS):
        scale = fw * width / (rw * head().shape[1])
        s = cv2.resize(head(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sprites.append(s if k % 2 == 0 else np.ascontiguousarray(s[:, ::-1]))
    truth = []
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "ultrafast", "crf": "20"}
    step = 3 * width / 640
    for t in range(frames):
        img = bg.copy()
        boxes = []
        for k in range(1 + min(2, 3 * t // frames)):
            s = sprites[k]
            sh, sw = s.shape[:2]
            x = int((40 + 0.3 * width * k + step * t) % (width - sw))
            y = int(0.08 * height + 0.3 * height * k)
            img[y:y + sh, x:x + sw] = s
            boxes.append((x + rx * sw, y + ry * sh, rw * sw, rh * sh))
        truth.append(boxes)
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return truth


def recall(truth: list[list[tuple[float, float, float, float]]], found: dict[int, np.ndarray],
           min_iou: float = 0.3) -> tuple[float, float]:
    """(share of true faces matched by a box with IoU >= ``min_iou``, smallest matched face width in px)."""
    from moodlens.recognition.track import iou_matrix

    hit = total = 0
    smallest = float("inf")
    for index, boxes in enumerate(truth):
        total += len(boxes)
        got = found.get(index)
        if got is None or not len(got):
            continue
        iou = iou_matrix(np.array(boxes), got)
        for k in np.flatnonzero(iou.max(1) >= min_iou):
            hit += 1
            smallest = min(smallest, boxes[k][2])
    return hit / max(total, 1), smallest


def make_frames(n: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """n frames with 1, 2 or 3 astronaut heads (changing every n/3 frames), moving 4 px a frame."""
    w, h = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (h, w, 3)).astype(np.uint8), (0, 0), 6)
    head = np.ascontiguousarray(skimage.data.astronaut()[10:230, 140:310, ::-1])
    head = cv2.resize(head, (88, 114), interpolation=cv2.INTER_AREA)
    hh, hw = head.shape[:2]
    frames = []
    for t in range(n):
        img = bg.copy()
        count = 1 + min(2, 3 * t // n)
        for k in range(count):
            x = (40 + 170 * k + 4 * t) % (w - hw)
            y = 40 + 150 * (k % 3)
            img[y:y + hh, x:x + hw] = head if k % 2 == 0 else head[:, ::-1]
        frames.append(img)
    return frames
