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
Rect = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)
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


def _label_rect(image_shape: tuple[int, ...], text: str, x: int, y: int, scale: float,
                ) -> tuple[int, int, int, int, int, int]:
    """Where :func:`_put_label` draws: (left, top, right, bottom) of the filled box, then the text's width
    and height. The box's bottom-left is at (x, y), moved inside the image when needed."""
    font_scale = 0.6 * scale
    thick = max(1, round(1.5 * scale))
    (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, thick)
    pad = max(2, round(4 * scale))
    H, W = image_shape[:2]
    x = int(min(max(0, x), max(0, W - tw - 2 * pad)))
    top = y - th - base - 2 * pad
    if top < 0:  # no room above the box: draw inside it
        top = max(0, y)
    return x, top, x + tw + 2 * pad, top + th + base + 2 * pad, tw, th


def _label_area(image_shape: tuple[int, ...], text: str, x: int, y: int, scale: float) -> Rect:
    """The pixels a label covers, right and bottom exclusive (``cv2.rectangle`` fills its corners inclusive)."""
    left, top, right, bottom, _, _ = _label_rect(image_shape, text, x, y, scale)
    return left, top, right + 1, bottom + 1


def _put_label(image: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int], scale: float) -> None:
    """Filled label box with its bottom-left at (x, y), moved inside the image when needed."""
    left, top, right, bottom, _, th = _label_rect(image.shape, text, x, y, scale)
    pad = max(2, round(4 * scale))
    cv2.rectangle(image, (left, top), (right, bottom), color, -1)
    cv2.putText(image, text, (left + pad, top + pad + th), _FONT, 0.6 * scale, _text_color(color),
                max(1, round(1.5 * scale)), cv2.LINE_AA)


def label_text(faces: Faces, i: int, show_confidence: bool = True, show_track_id: bool = True) -> str:
    """The label drawn above face ``i``: ``emotion 87%``, with ``#id`` when tracked, ``face`` before classifying."""
    face = faces[i]
    if np.isnan(faces.probs[i]).any():
        text = "face"
    else:
        text = face.emotion + (f" {face.confidence:.0%}" if show_confidence else "")
    if show_track_id and face.track_id is not None:
        text = f"#{face.track_id} {text}"
    return text


@dataclass
class LabelAnnotator:
    """``emotion 87%`` above each face (and ``#id`` when tracked)."""

    show_confidence: bool = True
    show_track_id: bool = True

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        s = _label_scale(image)
        for i, (x, y, _, _) in enumerate(faces.boxes):
            text = label_text(faces, i, self.show_confidence, self.show_track_id)
            _put_label(image, text, int(x), int(y), _color(faces, i), s)
        return image


def _overlap(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _candidates(box: Rect, label: Rect, size: tuple[int, int], gap: int) -> list[tuple[int, int]]:
    """Top-left corners to try for a panel of ``size`` (w, h) beside a face, nearest first."""
    x0, y0, x1, y1 = box
    w, h = size
    top = min(y0, label[1])
    spots = [(x1 + gap, y0), (x0 - gap - w, y0), (x1 + gap, y1 - h), (x0 - gap - w, y1 - h),
             (x0, y1 + gap), (x1 - w, y1 + gap), ((x0 + x1 - w) // 2, y1 + gap),
             (x0, top - gap - h), (x1 - w, top - gap - h), (x1 + gap, top - gap - h), (x0 - gap - w, top - gap - h),
             (x1 + gap, y1 + gap), (x0 - gap - w, y1 + gap)]
    # Then further along the sides, in steps of a third of the panel.
    for k in range(1, 7):
        for dy in (k * h // 3, -k * h // 3):
            spots += [(x1 + gap, y0 + dy), (x0 - gap - w, y0 + dy)]
    return spots


def place_panels(boxes: np.ndarray, labels: list[Rect], sizes: list[tuple[int, int]], image_shape: tuple[int, ...],
                 gap: int = 4) -> list[Rect | None]:
    """Where to draw each face's score panel without covering any face, any label or another panel.

    ``labels[i]`` is the label of face ``i``; entries after the last face are more areas to keep clear
    (panels drawn before). ``sizes[i]`` is face ``i``'s panel (width, height). Candidate spots around
    each face are tried nearest first; a panel that fits nowhere inside the image without covering
    something is left out (``None``) rather than drawn over another face.
    """
    H, W = image_shape[:2]
    faces: list[Rect] = [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in boxes]
    taken: list[Rect] = [*faces, *labels]
    placed: list[Rect | None] = []
    for i, (w, h) in enumerate(sizes):
        spot = None
        for cx, cy in _candidates(faces[i], labels[i], (w, h), gap):
            rect = (cx, cy, cx + w, cy + h)
            if cx >= 0 and cy >= 0 and cx + w <= W and cy + h <= H and not any(_overlap(rect, t) for t in taken):
                spot = rect
                break
        placed.append(spot)
        if spot is not None:
            taken.append(spot)
    return placed


@dataclass
class ScoreBarAnnotator:
    """Seven horizontal bars (one per emotion) beside each face, widths proportional to its scores.

    Panels are placed where they cover no face, no label and no other panel (:func:`place_panels`),
    shrunk to 3/4 or 1/2 size when a crowd leaves no room at full size, and left out when even that fails.
    """

    width: int | None = None
    #: The labels to keep clear of, as :class:`LabelAnnotator` draws them.
    show_confidence: bool = True
    show_track_id: bool = True

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        s = _scale(image)
        classified = [i for i in range(len(faces)) if not np.isnan(faces.probs[i]).any()]
        # Labels first (one per face, as LabelAnnotator draws them), then each panel drawn.
        keep_clear = [_label_area(image.shape, label_text(faces, i, self.show_confidence, self.show_track_id),
                                  int(faces.boxes[i][0]), int(faces.boxes[i][1]), _label_scale(image))
                      for i in range(len(faces))]
        todo = classified
        for factor in (1.0, 0.75, 0.5):
            if not todo:
                break
            sizes = {i: self._size(s, factor) for i in todo}
            spots = place_panels(faces.boxes, keep_clear, [sizes.get(i, (0, 0)) for i in range(len(faces))],
                                 image.shape, gap=max(4, round(4 * s)))  # clear of the box's scaled outline
            for i in todo:
                if spots[i] is not None:
                    self._draw(image, faces.probs[i], spots[i], s * factor)
                    keep_clear.append(spots[i])
            todo = [i for i in todo if spots[i] is None]
        return image

    def _size(self, s: float, factor: float) -> tuple[int, int]:
        """Panel (width, height) at drawing scale ``s`` shrunk by ``factor``."""
        bar_w = round((self.width or max(30, round(90 * s))) * factor)
        bar_h = max(4, round(9 * s * factor))
        label_w = cv2.getTextSize("surprise", _FONT, 0.32 * s * factor, 1)[0][0] + 4
        return label_w + bar_w + 4, len(EMOTIONS) * (bar_h + 2) + 2

    def _draw(self, image: np.ndarray, probs: np.ndarray, rect: Rect, s: float) -> None:
        left, top, right, bottom = rect
        bar_h = max(4, round(9 * s))
        label_w = cv2.getTextSize("surprise", _FONT, 0.32 * s, 1)[0][0] + 4
        bar_w = right - left - label_w - 4
        cv2.rectangle(image, (left, top), (right - 1, bottom - 1), (25, 25, 25), -1)  # names read on any background
        for k, (name, p) in enumerate(zip(EMOTIONS, probs, strict=True)):
            y = top + 2 + k * (bar_h + 2)
            cv2.putText(image, name, (left + 2, y + bar_h - 1), _FONT, 0.32 * s, (255, 255, 255), 1, cv2.LINE_AA)
            x0 = left + 2 + label_w
            cv2.rectangle(image, (x0, y), (x0 + bar_w, y + bar_h), (60, 60, 60), -1)
            cv2.rectangle(image, (x0, y), (x0 + max(1, round(bar_w * float(p))), y + bar_h), EMOTION_COLORS_BGR[name],
                          -1)


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
