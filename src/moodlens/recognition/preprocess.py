"""Turning images and face boxes into classifier input (numpy and OpenCV only).

Training (``moodlens.train``) uses the same constants from :mod:`moodlens.spec`;
``tests/test_preprocess.py`` checks that both paths give identical arrays.
"""

from __future__ import annotations

import cv2
import numpy as np

from moodlens.spec import CROP_SIZE, FACE_MARGIN, IMAGE_SIZE


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any OpenCV-style image (gray, BGR, BGRA; uint8 or uint16) -> uint8 grayscale."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def crop_face(gray: np.ndarray, box: np.ndarray | tuple[int, int, int, int], margin: float = FACE_MARGIN) -> np.ndarray:
    """Cut a square face crop around ``box`` (x, y, w, h), pad at borders, resize to 48x48 uint8."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    H, W = gray.shape[:2]
    # Pad with replicated borders only where the square leaves the image.
    pad_l, pad_t = max(0, -x0), max(0, -y0)
    pad_r, pad_b = max(0, x0 + s - W), max(0, y0 + s - H)
    patch = gray[max(0, y0):min(H, y0 + s), max(0, x0):min(W, x0 + s)]
    if patch.size == 0:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    if pad_l or pad_t or pad_r or pad_b:
        patch = cv2.copyMakeBorder(patch, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if s > IMAGE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(patch, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interp)


def to_model_input(faces: np.ndarray) -> np.ndarray:
    """uint8 faces (N, 48, 48) -> float32 (N, 1, 44, 44) raw pixels, centre-cropped.

    Normalisation happens inside the model graph.
    """
    if faces.ndim == 2:
        faces = faces[None]
    off = (IMAGE_SIZE - CROP_SIZE) // 2
    return np.ascontiguousarray(faces[:, None, off:off + CROP_SIZE, off:off + CROP_SIZE], dtype=np.float32)
