"""Annotators: small objects with ``annotate(image, faces) -> image``, composed by calling them in turn.

Sizes (line width, font scale, bar height) scale with the image, so labels stay readable from
a 200-pixel thumbnail to a 24-megapixel photo. Colours come from :data:`moodlens.spec.EMOTION_COLORS_BGR`.
Annotators draw on a copy unless ``copy=False`` is passed to :func:`annotate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from moodlens.recognition.faces import Faces
from moodlens.spec import EMOTION_COLORS_BGR, EMOTIONS

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_UNKNOWN_COLOR = (255, 255, 255)  # faces not classified yet (NaN probabilities)


def _scale(image: np.ndarray) -> float:
    """Drawing scale: 1.0 for a 640-pixel short-ish side, never below 0.35."""
    return max(0.35, min(image.shape[:2]) / 640.0)


def _color(faces: Faces, i: int) -> tuple[int, int, int]:
    if np.isnan(faces.probs[i]).any():
        return _UNKNOWN_COLOR
    return EMOTION_COLORS_BGR[EMOTIONS[int(faces.probs[i].argmax())]]


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``bg`` (BGR luma)."""
    luma = 0.114 * bg[0] + 0.587 * bg[1] + 0.299 * bg[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def _as_drawable(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


@dataclass
class BoxAnnotator:
    """A rectangle around each face in its emotion's colour; ``thickness=None`` scales with the image."""

    thickness: int | None = None

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        t = self.thickness or max(1, round(2 * _scale(image)))
        for i, (x, y, w, h) in enumerate(faces.boxes):
            cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), _color(faces, i), t, cv2.LINE_AA)
        return image


#: Least drawing scale of label text: 0.6 font scale is about 13 px tall, legible in a 640x360 video (the
#: plain image scale would give about 9 px there).
MIN_LABEL_SCALE = 1.0


def _label_scale(image: np.ndarray) -> float:
    """Drawing scale of label text: the image's, but never below :data:`MIN_LABEL_SCALE`."""
    return max(_scale(image), MIN_LABEL_SCALE)


def _put_label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int], scale: float) -> None:
    """Filled label box with its bottom-left at (x, y), moved inside the image when needed."""
    font_scale = 0.6 * scale
    thick = max(1, round(1.5 * scale))
    (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, thick)
    pad = max(2, round(4 * scale))
    H, W = image.shape[:2]
    x = int(min(max(0, x), max(0, W - tw - 2 * pad)))
    top = y - th - base - 2 * pad
    if top < 0:  # no room above the box: draw inside it
        top = max(0, y)
    cv2.rectangle(image, (x, top), (x + tw + 2 * pad, top + th + base + 2 * pad), color, -1)
    cv2.putText(image, text, (x + pad, top + pad + th), _FONT, font_scale, _text_color(color), thick, cv2.LINE_AA)


@dataclass
class LabelAnnotator:
    """``emotion 87%`` above each face (and ``#id`` when tracked)."""

    show_confidence: bool = True
    show_track_id: bool = True

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        s = _label_scale(image)
        for i, face in enumerate(faces):
            x, y, _, _ = face.box
            if np.isnan(faces.probs[i]).any():
                text = "face"
            else:
                text = face.emotion + (f" {face.confidence:.0%}" if self.show_confidence else "")
            if self.show_track_id and face.track_id is not None:
                text = f"#{face.track_id} {text}"
            _put_label(image, text, x, y, _color(faces, i), s)
        return image


@dataclass
class ScoreBarAnnotator:
    """Seven horizontal bars (one per emotion) beside each face, widths proportional to its scores."""

    width: int | None = None

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        s = _scale(image)
        H, W = image.shape[:2]
        bar_w = self.width or max(30, round(90 * s))
        bar_h = max(4, round(9 * s))
        font_scale = 0.32 * s
        for i, (x, y, w, _h) in enumerate(faces.boxes):
            if np.isnan(faces.probs[i]).any():
                continue
            label_w = cv2.getTextSize("surprise", _FONT, font_scale, 1)[0][0] + 4
            left = int(x + w + 4)
            if left + label_w + bar_w > W:  # no room on the right: put the bars on the left
                left = max(0, int(x) - 4 - label_w - bar_w)
            # Dark backdrop so the white names read on any background.
            bottom = min(H, int(y) + len(EMOTIONS) * (bar_h + 2))
            cv2.rectangle(image, (left - 2, int(y) - 2), (left + label_w + bar_w + 2, bottom), (25, 25, 25), -1)
            for k, (name, p) in enumerate(zip(EMOTIONS, faces.probs[i], strict=True)):
                top = int(y) + k * (bar_h + 2)
                if top + bar_h > H:
                    break
                cv2.putText(image, name, (left, top + bar_h - 1), _FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
                x0 = left + label_w
                cv2.rectangle(image, (x0, top), (x0 + bar_w, top + bar_h), (60, 60, 60), -1)
                cv2.rectangle(image, (x0, top), (x0 + max(1, round(bar_w * float(p))), top + bar_h),
                              EMOTION_COLORS_BGR[name], -1)
        return image


@dataclass
class BlurAnnotator:
    """Blur (or pixelate) each face, for sharing annotated frames without showing who was there."""

    pixelate: bool = False

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        H, W = image.shape[:2]
        for x, y, w, h in faces.boxes:
            x0, y0, x1, y1 = max(0, int(x)), max(0, int(y)), min(W, int(x + w)), min(H, int(y + h))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            roi = image[y0:y1, x0:x1]
            if self.pixelate:
                cells = (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12))
                small = cv2.resize(roi, cells, interpolation=cv2.INTER_AREA)
                roi[:] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
            else:
                k = max(3, ((x1 - x0) // 3) | 1)  # odd kernel, about a third of the face
                roi[:] = cv2.GaussianBlur(roi, (k, k), 0)
        return image


def draw_text(image: np.ndarray, text: str, corner: str = "top-left") -> np.ndarray:
    """A status line (e.g. FPS) in a corner, sized like the labels."""
    s = _label_scale(image)
    (tw, th), base = cv2.getTextSize(text, _FONT, 0.6 * s, max(1, round(1.5 * s)))
    pad = max(2, round(4 * s))
    x = pad if corner.endswith("left") else image.shape[1] - tw - 3 * pad
    _put_label(image, text, x, th + base + 3 * pad, (30, 30, 30), s)
    return image


def annotate(image: np.ndarray, faces: Faces, *, boxes: bool = True, labels: bool = True, scores: bool = False,
             blur: bool = False, copy: bool = True,
             annotators: Sequence[BoxAnnotator | LabelAnnotator | ScoreBarAnnotator | BlurAnnotator] | None = None,
             ) -> np.ndarray:
    """Draw faces on (a copy of) a BGR image: blur first, then boxes, labels and optional score bars."""
    out = _as_drawable(image.copy() if copy else image)
    if out.dtype != np.uint8:
        raise ValueError(f"annotate needs a uint8 image, got {out.dtype}")
    if annotators is None:
        annotators = ([BlurAnnotator()] if blur else []) + ([BoxAnnotator()] if boxes else []) \
            + ([LabelAnnotator()] if labels else []) + ([ScoreBarAnnotator()] if scores else [])
    for a in annotators:
        out = a.annotate(out, faces)
    return out
