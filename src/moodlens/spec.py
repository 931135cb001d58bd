"""The one source of truth for labels, colours and preprocessing.

Training, export, the runtime classifier, annotators and reports all read these
values from here, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Final

#: FER2013 class names, in the order of the dataset's integer labels.
EMOTIONS: Final[tuple[str, ...]] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: Final[int] = len(EMOTIONS)

#: BGR colours (OpenCV order) used wherever an emotion is drawn.
EMOTION_COLORS_BGR: Final[dict[str, tuple[int, int, int]]] = {
    "angry": (40, 39, 214),
    "disgust": (44, 160, 44),
    "fear": (189, 103, 148),
    "happy": (14, 201, 255),
    "sad": (180, 119, 31),
    "surprise": (34, 189, 188),
    "neutral": (150, 150, 150),
}

#: Valence groups for the positive / neutral / negative index of event reports.
VALENCE: Final[dict[str, int]] = {
    "angry": -1,
    "disgust": -1,
    "fear": -1,
    "sad": -1,
    "neutral": 0,
    "surprise": 0,
    "happy": 1,
}

#: Side of a FER2013 face image (square, grayscale).
IMAGE_SIZE: Final[int] = 48
#: Side of the centre crop the network sees (training takes random crops of this size).
CROP_SIZE: Final[int] = 44
#: Pixel normalisation applied after scaling to [0, 1].
PIXEL_MEAN: Final[float] = 0.5
PIXEL_STD: Final[float] = 0.25


def label_index(name: str) -> int:
    """Return the class index of an emotion name (case-insensitive)."""
    key = name.strip().lower()
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion label {name!r}; expected one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)

#: Extra border around a detector's face box before the crop is resized to 48x48,
#: as a fraction of the box side (FER2013 faces are tight crops). See preprocess.crop_face.
FACE_MARGIN: Final[float] = 0.0
