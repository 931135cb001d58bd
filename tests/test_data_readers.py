"""FER2013 readers: the challenge CSV (plain and gzipped) and the image-folder layout, good and bad data."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np
import pytest
from fer_synthetic import synthetic_faces, write_fer_csv

from moodlens.dataset.readers import DataError, describe, load_dataset, read_csv, read_image_folders
from moodlens.spec import EMOTIONS

GOOD = " ".join(["7"] * 2304)


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_faces(3, seed=5)  # 21 faces, 3 per class


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("name", ["fer.csv", "fer.csv.gz"])
def test_csv_round_trip_plain_and_gz(tmp_path, faces, name):
    images, labels = faces
    splits = ["Training"] * 14 + ["PublicTest"] * 4 + ["PrivateTest"] * 3
    path = write_fer_csv(tmp_path / name, images, labels, splits)
    ds = load_dataset(path)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (21, 48, 48)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.split_names() == ["PrivateTest", "PublicTest", "Training"]
    assert len(ds.split("privatetest")) == 3  # split names are case-insensitive
    assert len(ds.split("train")) == 14  # image-folder names are accepted as aliases
    assert ds.skipped == []
    counts = describe(ds)
    assert sum(counts["Training"].values()) == 14 and list(counts["Training"]) == list(EMOTIONS)


def test_csv_without_usage_column_is_all_training(tmp_path, faces):
    images, labels = faces
    ds = read_csv(write_fer_csv(tmp_path / "fer.csv", images, labels, splits=None))
    assert ds.split_names() == ["Training"] and len(ds) == 21


def test_unknown_split_names_the_available_ones(tmp_path, faces):
    ds = read_csv(write_fer_csv(tmp_path / "fer.csv", *faces, splits=["Training"] * 21))
    with pytest.raises(DataError, match=r"no split named 'PrivateTest'; available: Training"):
        ds.split("PrivateTest")


@pytest.mark.parametrize("header", ["label,pixels,Usage", "emotion,image,Usage", "emotion", ""])
def test_csv_wrong_columns(tmp_path, header):
    path = _csv(tmp_path / "bad.csv", header, [f"0,{GOOD},Training"])
    with pytest.raises(DataError, match=r"bad\.csv: missing column\(s\)") as err:
        read_csv(path)
    assert "expected emotion,pixels" in str(err.value)


BAD_ROWS = {
    "short pixels": ("0," + " ".join(["7"] * 2303) + ",Training", "pixel count 2303 != 2304"),
    "long pixels": ("0," + " ".join(["7"] * 2305) + ",Training", "pixel count 2305 != 2304"),
    "empty pixels": ("0,,Training", "pixel count 0 != 2304"),
    "value 256": ("0," + " ".join(["7"] * 2303 + ["256"]) + ",Training", "outside 0..255"),
    "value -1": ("0," + " ".join(["-1"] + ["7"] * 2303) + ",Training", "outside 0..255"),
    "non-integer pixel": ("0," + " ".join(["7"] * 2303 + ["7.5"]) + ",Training", "not an integer"),
    "label 7": (f"7,{GOOD},Training", "unknown label 7"),
    "label -1": (f"-1,{GOOD},Training", "unknown label -1"),
    "label word": (f"happy,{GOOD},Training", "emotion 'happy' is not an integer"),
    "extra field": (f"0,{GOOD},Training,oops", "more fields than columns"),
    "missing field": (f"0,{GOOD}", "fewer fields than columns"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_csv_bad_row_is_a_clear_error(tmp_path, case):
    row, reason = BAD_ROWS[case]
    path = _csv(tmp_path / "fer.csv", "emotion,pixels,Usage", [f"3,{GOOD},Training", row])
    with pytest.raises(DataError) as err:
        read_csv(path)
    message = str(err.value)
    assert message.startswith(f"{path}: row 3: "), message  # file, then row (the header is row 1)
    assert reason in message


def test_skip_bad_skips_counts_and_names_every_bad_row(tmp_path):
    rows = [f"3,{GOOD},Training"] + [row for row, _ in BAD_ROWS.values()] + [f"5,{GOOD},PublicTest"]
    path = _csv(tmp_path / "fer.csv", "emotion,pixels,Usage", rows)
    ds = read_csv(path, skip_bad=True)
    assert len(ds) == 2 and ds.labels.tolist() == [3, 5]
    assert len(ds.skipped) == len(BAD_ROWS)
    for i, (_, reason) in enumerate(BAD_ROWS.values()):
        assert ds.skipped[i].startswith(f"{path}: row {i + 3}: ") and reason in ds.skipped[i]
    # The skipped list travels with split views, so reports on one split still show it.
    assert len(ds.split("PublicTest").skipped) == len(BAD_ROWS)


def test_all_rows_bad_is_an_error_even_with_skip_bad(tmp_path):
    path = _csv(tmp_path / "fer.csv", "emotion,pixels,Usage", [f"9,{GOOD},Training"] * 3)
    with pytest.raises(DataError, match=r"no faces found \(3 bad rows skipped\)"):
        read_csv(path, skip_bad=True)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    good = gzip.compress(f"emotion,pixels,Usage\n0,{GOOD},Training\n".encode())
    path = tmp_path / "fer.csv.gz"
    path.write_bytes(good[: len(good) // 2])  # truncated download
    with pytest.raises(DataError, match=r"fer\.csv\.gz: cannot read as CSV"):
        read_csv(path)
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match=r"fer\.csv\.gz: cannot read as CSV"):
        load_dataset(path)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nowhere.csv")


def _write_folders(root: Path, faces: tuple[np.ndarray, np.ndarray]) -> dict[str, list[int]]:
    """train/ with mixed-case class folders, JPEG and PNG files, one face of another size; test/ in capitals."""
    images, labels = faces
    expected: dict[str, list[int]] = {"Training": [], "PublicTest": []}
    for i, (face, label) in enumerate(zip(images, labels, strict=True)):
        split_dir, split = ("train", "Training") if i % 3 else ("TEST", "PublicTest")
        name = EMOTIONS[label]
        folder = root / split_dir / (name.capitalize() if label % 2 else name.upper() if label == 4 else name)
        folder.mkdir(parents=True, exist_ok=True)
        if i == 1:
            face = cv2.resize(face, (96, 96), interpolation=cv2.INTER_NEAREST)  # readers resize to 48x48
        cv2.imwrite(str(folder / f"{i:03d}.{'png' if i % 2 else 'jpg'}"), face)
        expected[split].append(int(label))
    return expected


def test_image_folders_mixed_case_and_formats(tmp_path, faces):
    expected = _write_folders(tmp_path, faces)
    (tmp_path / "train" / "Happy" / "notes.txt").write_text("not an image; ignored by suffix")
    ds = load_dataset(tmp_path)
    assert ds.images.shape == (21, 48, 48) and ds.images.dtype == np.uint8
    assert ds.split_names() == ["PublicTest", "Training"]
    for split, labels in expected.items():
        assert sorted(ds.split(split).labels.tolist()) == sorted(labels)
    assert len(ds.split("test")) == len(expected["PublicTest"])
    # PNG is lossless: face 7 (train/fear/007.png) comes back exactly
    assert (tmp_path / "train" / "fear" / "007.png").is_file()
    assert any(np.array_equal(faces[0][7], face) for face in ds.split("Training").images)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n garbage", b"GIF89a not really"])
def test_unreadable_image_is_a_clear_error(tmp_path, faces, content):
    _write_folders(tmp_path, faces)
    bad = tmp_path / "train" / "SAD" / "broken.png"
    bad.write_bytes(content)
    with pytest.raises(DataError, match="unreadable image") as err:
        read_image_folders(tmp_path)
    assert str(bad) in str(err.value)
    ds = read_image_folders(tmp_path, skip_bad=True)
    assert len(ds) == 21 and len(ds.skipped) == 1 and str(bad) in ds.skipped[0]


def test_unknown_class_folder(tmp_path, faces):
    _write_folders(tmp_path, faces)
    stray = tmp_path / "train" / "contempt"
    stray.mkdir()
    cv2.imwrite(str(stray / "x.png"), faces[0][0])
    with pytest.raises(DataError, match="unknown emotion label 'contempt'") as err:
        read_image_folders(tmp_path)
    assert str(stray) in str(err.value)
    ds = read_image_folders(tmp_path, skip_bad=True)
    assert len(ds) == 21 and len(ds.skipped) == 1 and str(stray) in ds.skipped[0]


def test_folder_without_split_folders(tmp_path, faces):
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.png"), faces[0][0])
    with pytest.raises(DataError, match="expected split folders such as train/ and test/"):
        load_dataset(tmp_path)


def test_packed_round_trip_and_bad_packed_file(tmp_path, faces):
    from moodlens.dataset.readers import save_packed

    images, labels = faces
    splits = ["Training"] * 14 + ["PublicTest"] * 7
    ds = load_dataset(write_fer_csv(tmp_path / "fer.csv", images, labels, splits))
    packed = load_dataset(save_packed(ds, tmp_path / "fer.npz.xz"))
    np.testing.assert_array_equal(packed.images, ds.images)
    np.testing.assert_array_equal(packed.labels, ds.labels)
    assert packed.split_names() == ["PublicTest", "Training"]
    bad = tmp_path / "bad.npz.xz"
    bad.write_bytes(b"not xz at all")
    with pytest.raises(DataError, match="bad.npz.xz"):
        load_dataset(bad)
