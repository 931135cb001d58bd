"""``Analyzer``: image in, every face with its expression out (detect -> crop -> classify in one batch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from moodlens.recognition.classifier import EmotionClassifier
from moodlens.recognition.detect import create_detector
from moodlens.recognition.faces import Faces
from moodlens.recognition.imageio import (
    MAX_PIXELS,
    ColorOrder,
    ImageError,
    iter_image_paths,
    load_image,
    rescale,
)
from moodlens.recognition.preprocess import crop_face, to_gray
from moodlens.recognition.pyramid import detection_scales, merge_passes
from moodlens.settings import DEFAULTS, AnalysisSettings

ImageInput = str | Path | bytes | bytearray | np.ndarray


class Analyzer:
    """Find every face in an image and classify its expression.

    >>> faces = Analyzer().analyze("photo.jpg")       # doctest: +SKIP
    >>> [(f.box, f.emotion, f.confidence) for f in faces]  # doctest: +SKIP

    ``settings``: an :class:`~moodlens.settings.AnalysisSettings` (model, detector, min_confidence,
    min_face, max_side, margin, flip); keywords of the same names override single fields, e.g.
    ``Analyzer(model="accurate")``.
    ``color`` is the channel order of numpy arrays passed in (files and bytes carry their own).
    """

    def __init__(self, settings: AnalysisSettings | None = None, *, color: ColorOrder = "bgr",
                 max_pixels: int = MAX_PIXELS, threads: int | None = 1, **overrides: Any) -> None:
        self.settings = (settings or DEFAULTS).with_(**overrides)
        self.classifier = EmotionClassifier(self.settings.model, threads=threads, flip=self.settings.flip)
        self.detector = create_detector(self.settings.detector, min_confidence=self.settings.min_confidence)
        self.min_confidence = self.settings.min_confidence
        self.min_face = self.settings.min_face
        self.max_side = self.settings.max_side
        #: The face widths the detector finds reliably in its input (None: unknown, one pass).
        self.face_range: tuple[float, float] | None = getattr(self.detector, "face_range", None)
        self.margin = self.settings.margin
        self.color = color
        self.max_pixels = max_pixels

    def load(self, image: ImageInput, color: ColorOrder | None = None) -> np.ndarray:
        """Any accepted input -> BGR uint8 (raises :class:`moodlens.recognition.imageio.ImageError`)."""
        return load_image(image, max_pixels=self.max_pixels, color=color or self.color)

    def detection_scales(self, width: int, height: int) -> tuple[float, ...]:
        """The scales :meth:`detect` runs the detector at for an image of this size, finest first."""
        return detection_scales(width, height, self.min_face, self.max_side, self.face_range)

    def detect(self, bgr: np.ndarray, name: str = "<image>") -> Faces:
        """Face boxes (original pixels) and detector scores, probabilities left as NaN: every face from
        ``min_face`` wide up to one filling the image, in one pass or a few (:meth:`detection_scales`).

        Raises :class:`~moodlens.recognition.imageio.ImageError` (naming ``name``) for an image that cannot
        be scaled to the detector's size.
        """
        h, w = bgr.shape[:2]
        passes = [(scale, self._detect_at(bgr, scale, name)) for scale in self.detection_scales(w, h)]
        return merge_passes(passes, self.face_range) if len(passes) > 1 else passes[0][1]

    def _detect_at(self, bgr: np.ndarray, scale: float, name: str) -> Faces:
        h, w = bgr.shape[:2]
        small = bgr if scale == 1.0 else rescale(bgr, scale, name)
        found = self.detector.detect(small)
        keep = found.detector_scores >= self.min_confidence
        boxes = found.boxes[keep].astype(np.float64)
        if scale != 1.0:
            boxes = boxes / scale
        boxes = np.round(boxes).astype(np.int32)
        # Keep boxes inside the original image even after rounding.
        boxes[:, 2] = np.minimum(boxes[:, 2], w - boxes[:, 0])
        boxes[:, 3] = np.minimum(boxes[:, 3], h - boxes[:, 1])
        return Faces(boxes, found.detector_scores[keep])

    def classify(self, bgr: np.ndarray, faces: Faces, gray: np.ndarray | None = None) -> Faces:
        """Classify the given boxes of ``bgr`` in one batch; returns new Faces with ``probs`` set.

        ``gray``: ``to_gray(bgr)`` when the caller already has it (the video loop does), to skip a conversion.
        """
        if len(faces) == 0:
            return Faces(track_ids=faces.track_ids)
        if gray is None:
            gray = to_gray(bgr)
        crops = np.stack([crop_face(gray, box, self.margin) for box in faces.boxes])
        probs = self.classifier.predict(crops)
        return Faces(faces.boxes, faces.detector_scores, probs, faces.track_ids)

    def classify_frames(self, frames: list[tuple[np.ndarray, Faces, np.ndarray | None]],
                        mirror: list[bool] | None = None) -> list[Faces]:
        """:meth:`classify` for several frames (of one or several video sources) in one batch.

        ``frames``: ``(bgr, faces, gray or None)`` each; returns each frame's Faces with ``probs`` set.
        ``mirror``: per frame, whether the alternating flip (``flip="alternate"``) shows its faces mirrored.
        """
        crops = [crop_face(gray if gray is not None else to_gray(bgr), box, self.margin)
                 for bgr, faces, gray in frames for box in faces.boxes]
        if not crops:
            return [Faces(track_ids=faces.track_ids) for _, faces, _ in frames]
        per_face = None if mirror is None else np.repeat(np.asarray(mirror, bool), [len(f) for _, f, _ in frames])
        probs = self.classifier.predict(np.stack(crops), mirror=per_face)
        out, k = [], 0
        for _, faces, _ in frames:
            n = len(faces)
            out.append(Faces(faces.boxes, faces.detector_scores, probs[k:k + n], faces.track_ids))
            k += n
        return out

    def analyze(self, image: ImageInput, color: ColorOrder | None = None, name: str | None = None) -> Faces:
        """Every face of ``image`` (path, bytes or array) with box, detector score and 7 class scores.

        ``name``: how errors call the input (default: its path, else its kind).
        """
        bgr = self.load(image, color)
        return self.classify(bgr, self.detect(bgr, name or _input_name(image)))

    __call__ = analyze

    def analyze_paths(self, paths: list[str | Path] | tuple[str | Path, ...], progress: bool = False,
                      ) -> Iterator[tuple[Path, Faces | ImageError]]:
        """Analyse files and folders (recursively); yields (path, faces) or (path, error) and goes on after errors."""
        for path, faces, _ in self.analyze_paths_with_images(paths, progress):
            yield path, faces

    def analyze_paths_with_images(self, paths: list[str | Path] | tuple[str | Path, ...], progress: bool = False,
                                  ) -> Iterator[tuple[Path, Faces | ImageError, np.ndarray | None]]:
        """:meth:`analyze_paths`, also yielding each decoded BGR image (None after an error), so that
        callers drawing on it need not decode the file a second time."""
        files = iter_image_paths(paths)
        for path in tqdm(files, desc="analysing", unit="image", disable=not progress):
            try:
                bgr = self.load(path)
                yield path, self.classify(bgr, self.detect(bgr, str(path))), bgr
            except ImageError as exc:
                yield path, exc, None


def _input_name(image: ImageInput) -> str:
    """How errors name an input: its path, else its kind."""
    return str(image) if isinstance(image, (str, Path)) else "<array>" if isinstance(image, np.ndarray) else "<bytes>"
