"""Readers for the two common FER2013 layouts.

* the challenge CSV (``emotion,pixels,Usage``; plain or gzipped), and
* the image-folder layout (``<split>/<emotion>/*.png``, or any image suffix the loader takes:
  :data:`moodlens.recognition.imageio.IMAGE_SUFFIXES`).

Both return a :class:`FaceDataset` of uint8 48x48 faces. Bad rows or files raise
:class:`DataError` naming the file and row or path, unless ``skip_bad`` is set,
in which case they are skipped and listed in ``FaceDataset.skipped``.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from moodlens.recognition.imageio import IMAGE_SUFFIXES
from moodlens.spec import EMOTIONS, IMAGE_SIZE, NUM_CLASSES, label_index

#: Folder names of the image-folder layout, mapped to CSV ``Usage`` names.
FOLDER_SPLITS = {"train": "Training", "training": "Training", "test": "PublicTest",
                 "val": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
                 "privatetest": "PrivateTest"}


class DataError(ValueError):
    """A dataset row or file that cannot be read as a FER2013 face."""


@dataclass
class FaceDataset:
    """Faces (N, 48, 48) uint8, labels (N,) int64 and split names (N,)."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    source: str = ""
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> FaceDataset:
        """Rows of one split (``Training``, ``PublicTest``, ``PrivateTest``; case-insensitive),
        or of several joined with ``+`` (``Training+PublicTest``)."""
        available = sorted(set(self.splits.tolist()))
        keep = np.zeros(len(self.splits), dtype=bool)
        for part in name.split("+"):
            wanted = FOLDER_SPLITS.get(part.lower(), part).lower()  # folder names (train/test) work too
            match = [s for s in available if s.lower() in (part.lower(), wanted)]
            if not match:
                raise DataError(f"{self.source}: no split named {part!r}; "
                                f"available: {', '.join(available) or 'none'}")
            keep |= self.splits == match[0]
        return FaceDataset(self.images[keep], self.labels[keep], self.splits[keep], self.source, self.skipped)

    def split_names(self) -> list[str]:
        return sorted(set(self.splits.tolist()))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}


def load_dataset(path: str | Path, *, skip_bad: bool = False, progress: bool = False) -> FaceDataset:
    """Load FER2013 from a CSV file (``.csv``/``.csv.gz``), a packed array file
    (``.npz``/``.npz.xz``, see :func:`save_packed`) or an image-folder root."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.name.endswith((".npz", ".npz.xz")):
        return read_packed(path)
    if path.is_dir():
        return read_image_folders(path, skip_bad=skip_bad, progress=progress)
    return read_csv(path, skip_bad=skip_bad, progress=progress)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _parse_row(row: dict[str, str]) -> tuple[np.ndarray, int]:
    try:
        label = int(row["emotion"])
    except (TypeError, ValueError):
        raise DataError(f"emotion {row['emotion']!r} is not an integer") from None
    if not 0 <= label < NUM_CLASSES:
        raise DataError(f"unknown label {label} (expected 0..{NUM_CLASSES - 1})")
    text = row["pixels"] or ""
    try:
        values = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise DataError("pixels contain a value that is not an integer") from None
    if values.size != IMAGE_SIZE * IMAGE_SIZE:
        raise DataError(f"pixel count {values.size} != {IMAGE_SIZE * IMAGE_SIZE}")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"pixel values outside 0..255 (min {values.min()}, max {values.max()})")
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), label


class _Collected:
    """Faces read so far, and the bad rows or files skipped instead of stopping (with ``skip_bad``)."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.splits: list[str] = []
        self.skipped: list[str] = []

    def add(self, face: np.ndarray, label: int, split: str) -> None:
        self.images.append(face)
        self.labels.append(label)
        self.splits.append(split)

    def bad(self, message: str) -> None:
        """Stop with ``message``, or (``skip_bad``) count it and go on."""
        if not self.skip_bad:
            raise DataError(message)
        self.skipped.append(message)

    def dataset(self, source: str) -> FaceDataset:
        if not self.images:
            raise DataError(f"{source}: no faces found"
                            + (f" ({len(self.skipped)} bad rows skipped)" if self.skipped else ""))
        return FaceDataset(images=np.stack(self.images).astype(np.uint8, copy=False),
                           labels=np.asarray(self.labels, dtype=np.int64), splits=np.asarray(self.splits),
                           source=source, skipped=self.skipped)


def _csv_rows(fh: io.TextIOBase, path: Path) -> csv.DictReader:
    """A reader over the CSV's rows with stripped column names; a missing column is a :class:`DataError`."""
    reader = csv.DictReader(fh)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = {"emotion", "pixels"} - set(header)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                        f"expected emotion,pixels[,Usage], found {','.join(header) or 'nothing'}")
    reader.fieldnames = header
    return reader


def _checked_row(row: dict[str, str]) -> tuple[np.ndarray, int]:
    if None in row:
        raise DataError("more fields than columns")
    if any(v is None for v in row.values()):
        raise DataError("fewer fields than columns")
    return _parse_row(row)


def read_csv(path: str | Path, *, skip_bad: bool = False, progress: bool = False) -> FaceDataset:
    """Read the challenge CSV. Rows without a ``Usage`` column are all ``Training``."""
    path = Path(path)
    found = _Collected(skip_bad)
    try:
        with _open_text(path) as fh:
            rows = tqdm(_csv_rows(fh, path), desc=f"reading {path.name}", unit=" rows", disable=not progress)
            for lineno, row in enumerate(rows, start=2):
                try:
                    face, label = _checked_row(row)
                except DataError as exc:
                    found.bad(f"{path}: row {lineno}: {exc}")
                    continue
                found.add(face, label, (row.get("Usage") or "Training").strip())
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from exc
    return found.dataset(str(path))


def _read_face(file: Path) -> np.ndarray | None:
    """A grayscale face resized to 48x48, or ``None`` when the file is not a readable image."""
    import cv2

    face = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
    if face is None or face.size == 0:
        return None
    if face.shape != (IMAGE_SIZE, IMAGE_SIZE):
        face = cv2.resize(face, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return face


def read_image_folders(root: str | Path, *, skip_bad: bool = False, progress: bool = False) -> FaceDataset:
    """Read ``root/<split>/<emotion>/*`` (split and class names case-insensitive)."""
    root = Path(root)
    found = _Collected(skip_bad)
    split_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.lower() in FOLDER_SPLITS)
    if not split_dirs:
        raise DataError(f"{root}: expected split folders such as train/ and test/ holding one folder per emotion")
    for split_dir in split_dirs:
        split = FOLDER_SPLITS[split_dir.name.lower()]
        class_dirs = sorted(d for d in split_dir.iterdir() if d.is_dir())
        for class_dir in tqdm(class_dirs, desc=f"reading {split_dir.name}/", unit=" classes", disable=not progress):
            try:
                label = label_index(class_dir.name)
            except ValueError as exc:
                found.bad(f"{class_dir}: {exc}")
                continue
            for file in sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES):
                face = _read_face(file)
                if face is None:
                    found.bad(f"{file}: unreadable image")
                    continue
                found.add(face, label, split)
    return found.dataset(str(root))


def describe(dataset: FaceDataset) -> dict[str, dict[str, int]]:
    """Class counts per split."""
    out: dict[str, dict[str, int]] = {}
    for split in dataset.split_names():
        out[split] = dataset.split(split).class_counts()
    return out


__all__ = ["DataError", "FaceDataset", "load_dataset", "read_csv", "read_image_folders", "describe"]


def save_packed(dataset: FaceDataset, path: str | Path) -> Path:
    """Write faces, labels and splits as one compact ``.npz.xz`` (about 55 MB for FER2013).

    For moving the data to a training machine that cannot read the CSV (e.g. a GPU machine); `moodlens data
    pack` writes one.
    """
    import lzma

    path = Path(path)
    buf = io.BytesIO()
    np.savez(buf, images=dataset.images, labels=dataset.labels.astype(np.uint8), splits=dataset.splits.astype("U16"))
    with lzma.open(path, "wb", preset=6) as fh:
        fh.write(buf.getvalue())
    return path


def read_packed(path: str | Path) -> FaceDataset:
    """Read a file written by :func:`save_packed` (or a plain ``.npz`` with the same arrays)."""
    import lzma

    path = Path(path)
    try:
        if path.suffix == ".xz":
            with lzma.open(path) as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            images, labels, splits = z["images"], z["labels"].astype(np.int64), z["splits"]
    except (OSError, ValueError, KeyError, lzma.LZMAError) as exc:
        raise DataError(f"{path}: not a packed moodlens dataset ({exc})") from exc
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                        f"got {images.dtype} {images.shape}")
    if not len(images):
        raise DataError(f"{path}: no faces")
    if not (len(images) == len(labels) == len(splits)) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{path}: labels/splits do not match the images")
    return FaceDataset(images, labels, splits, str(path))
