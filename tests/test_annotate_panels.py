"""Score panels in group photos never cover another face or any label (a real photo: the astronaut, nine times)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.annotate import annotate, place_panels

#: (x, y, scale) of each copy of the astronaut's head: two crowded rows, as in a group photo.
GROUP = [(20, 40, 0.8), (150, 60, 0.7), (270, 30, 0.85), (410, 70, 0.7), (530, 40, 0.8),
         (80, 300, 0.8), (220, 320, 0.7), (350, 290, 0.85), (490, 330, 0.7)]


def group_photo() -> np.ndarray:
    head = np.ascontiguousarray(skimage.data.astronaut()[20:250, 130:320, ::-1])
    canvas = np.full((620, 1000, 3), 110, np.uint8)
    for k, (x, y, scale) in enumerate(GROUP):
        face = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        face = face if k % 2 == 0 else face[:, ::-1]
        canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
    return canvas


@pytest.fixture(scope="module")
def photo_and_faces():
    photo = group_photo()
    return photo, Analyzer().analyze(photo)


def test_score_panels_cover_no_face_and_no_label(photo_and_faces):
    photo, faces = photo_and_faces
    assert len(faces) == len(GROUP)
    labelled = annotate(photo, faces)
    with_panels = annotate(photo, faces, scores=True)
    panels = (with_panels != labelled).any(axis=2)
    labels = (annotate(photo, faces, boxes=False) != photo).any(axis=2)
    keep_clear = labels.copy()
    for x, y, w, h in faces.boxes:
        keep_clear[y:y + h, x:x + w] = True
    assert not (panels & keep_clear).any(), f"{int((panels & keep_clear).sum())} panel pixels over a face or label"
    # Every face got its panel (here there is room for all nine): at least 7 bars' worth of pixels each.
    assert panels.sum() > len(faces) * 7 * 30 * 4


def test_a_panel_with_no_free_spot_is_left_out():
    boxes = np.array([[0, 0, 100, 100], [100, 0, 100, 100], [0, 100, 100, 100], [100, 100, 100, 100]])
    labels = [(0, 0, 40, 10)] * 4
    spots = place_panels(boxes, labels, [(60, 60)] * 4, (200, 200, 3))
    assert spots == [None] * 4  # a 200x200 image full of faces has no room
    spots = place_panels(boxes[:1], [(0, 0, 40, 10)], [(60, 60)], (200, 300, 3))
    assert spots == [(104, 0, 164, 60)]  # right of the face, top-aligned, when that is free
