"""Small FER2013-style datasets for the model tests: 48x48 faces whose class is a learnable pattern.

Each class is a different texture (stripes, checkerboard, blobs, ring, flat grey) with noise and a
random shift, chosen to survive the training augmentation (flip, small rotation, brightness, erasing),
so a tiny network learns them in two epochs.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

from moodlens.spec import IMAGE_SIZE, NUM_CLASSES


def synthetic_faces(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces (7 * n_per_class, 48, 48) and labels, class by class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    centre = (IMAGE_SIZE - 1) / 2
    images, labels = [], []
    for k in range(NUM_CLASSES):
        for _ in range(n_per_class):
            dx, dy = rng.uniform(-3, 3, 2)
            x, y = xx - centre - dx, yy - centre - dy
            r = np.hypot(x, y)
            blob = np.exp(-(r / 9) ** 2) * 2 - 1
            pattern = (np.sin(y * np.pi / 4), np.sin(x * np.pi / 4),
                       np.sign(np.sin(x * np.pi / 6) * np.sin(y * np.pi / 6)), blob, -blob,
                       np.exp(-((r - 14) / 3) ** 2) * 2 - 1, np.zeros_like(r))[k]
            face = 128 + 90 * pattern + rng.normal(0, 18, pattern.shape)
            images.append(np.clip(face, 0, 255).astype(np.uint8))
            labels.append(k)
    return np.stack(images), np.asarray(labels)


def write_fer_csv(path: Path, images: np.ndarray, labels: np.ndarray, splits: list[str] | None,
                  extra_rows: list[list[str]] = ()) -> Path:
    """Write the challenge layout (``emotion,pixels[,Usage]``); gzip when the name ends in ``.gz``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"] if splits is not None else ["emotion", "pixels"])
        for i, (face, label) in enumerate(zip(images, labels, strict=True)):
            row = [str(int(label)), " ".join(map(str, face.ravel().tolist()))]
            w.writerow(row + [splits[i]] if splits is not None else row)
        w.writerows(extra_rows)
    return path


def synthetic_fer_csv(path: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    """A Training + PublicTest CSV of synthetic faces (per-class counts ``n_train`` and ``n_test``)."""
    x_tr, y_tr = synthetic_faces(n_train, seed)
    x_te, y_te = synthetic_faces(n_test, seed + 1)
    splits = ["Training"] * len(y_tr) + ["PublicTest"] * len(y_te)
    return write_fer_csv(path, np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te]), splits)
