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
    downscale,
    iter_image_paths,
    load_image,
)
from moodlens.recognition.preprocess import crop_face, to_gray
from moodlens.settings import DEFAULTS, AnalysisSettings

ImageInput = str | Path | bytes | bytearray | np.ndarray


class Analyzer:
    """Find every face in an image and classify its expression.

    >>> faces = Analyzer().analyze("photo.jpg")       # doctest: +SKIP
    >>> [(f.box, f.emotion, f.confidence) for f in faces]  # doctest: +SKIP

    ``settings``: an :class:`~moodlens.settings.AnalysisSettings` (model, detector, min_confidence,
    max_side, margin); keywords of the same names override single fields, e.g. ``Analyzer(model="accurate")``.
    ``color`` is the channel order of numpy arrays passed in (files and bytes carry their own).
    """

    def __init__(self, settings: AnalysisSettings | None = None, *, color: ColorOrder = "bgr",
                 max_pixels: int = MAX_PIXELS, threads: int | None = 1, **overrides: Any) -> None:
        self.settings = (settings or DEFAULTS).with_(**overrides)
        self.classifier = EmotionClassifier(self.settings.model, threads=threads)
        self.detector = create_detector(self.settings.detector, min_confidence=self.settings.min_confidence)
        self.min_confidence = self.settings.min_confidence
        self.max_side = self.settings.max_side
        self.margin = self.settings.margin
        self.color = color
        self.max_pixels = max_pixels

    def load(self, image: ImageInput, color: ColorOrder | None = None) -> np.ndarray:
        """Any accepted input -> BGR uint8 (raises :class:`moodlens.recognition.imageio.ImageError`)."""
        return load_image(image, max_pixels=self.max_pixels, color=color or self.color)

    def detect(self, bgr: np.ndarray, name: str = "<image>") -> Faces:
        """Face boxes (original pixels) and detector scores; probabilities left as NaN.

        Raises :class:`~moodlens.recognition.imageio.ImageError` (naming ``name``) for an image that cannot
        be scaled to the detector's size.
        """
        h, w = bgr.shape[:2]
        small, scale = downscale(bgr, self.max_side, name)
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
