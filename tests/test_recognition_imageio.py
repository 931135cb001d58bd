"""load_image: every supported input kind in, BGR uint8 out; every bad input -> ImageError with a reason."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from recognition_media import astronaut_bgr

from moodlens.recognition.imageio import ImageError, iter_image_paths, load_image


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    return cv2.resize(astronaut_bgr(), (128, 96))


def test_paths_bytes_and_formats(tmp_path, bgr):
    for ext in (".jpg", ".png", ".bmp", ".tiff", ".webp"):
        path = tmp_path / f"a{ext}"
        assert cv2.imwrite(str(path), bgr)
        for src in (path, str(path), path.read_bytes()):
            out = load_image(src)
            assert out.shape == bgr.shape and out.dtype == np.uint8
            assert np.abs(out.astype(int) - bgr).mean() < 8  # lossy formats differ a little


def test_array_kinds_all_become_the_same_bgr(bgr):
    rgb = bgr[:, :, ::-1]
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert np.array_equal(load_image(bgr), bgr)
    assert np.array_equal(load_image(rgb, color="rgb"), bgr)
    assert np.array_equal(load_image(np.dstack([bgr, np.full(gray.shape, 255, np.uint8)])), bgr)
    assert np.array_equal(load_image(np.dstack([rgb, np.full(gray.shape, 255, np.uint8)]), color="rgb"), bgr)
    assert np.array_equal(load_image(bgr.astype(np.uint16) * 257), bgr)
    assert np.array_equal(load_image(bgr.astype(np.float32) / 255.0), bgr)
    g = load_image(gray)
    assert g.shape == bgr.shape and np.array_equal(g[:, :, 0], gray) and np.array_equal(g[:, :, 2], gray)
    assert np.array_equal(load_image(gray[:, :, None]), g)
    assert load_image(rgb[::2, ::2]).flags["C_CONTIGUOUS"]  # strided views become one buffer for C detectors


def test_16bit_png_file(tmp_path, bgr):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), bgr.astype(np.uint16) * 257)
    assert np.array_equal(load_image(path), bgr)


@pytest.mark.parametrize("make, reason, kind", [
    (lambda p, img: p.write_bytes(b""), "empty file", "invalid"),
    (lambda p, img: p.write_text("name,emotion\nbob,happy\n"), "not a supported image", "unsupported"),
    (lambda p, img: p.write_bytes(b"%PDF-1.4 hello"), "PDF", "unsupported"),
    (lambda p, img: p.write_bytes(cv2.imencode(".jpg", img)[1].tobytes()[:1500]), "truncated JPEG", "invalid"),
    (lambda p, img: p.write_bytes(cv2.imencode(".png", img)[1].tobytes()[:1500]), "truncated PNG", "invalid"),
    (lambda p, img: cv2.imwrite(str(p), np.zeros((1, 1, 3), np.uint8)), "1x1", "invalid"),
    (lambda p, img: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64), "PNG", "invalid"),
])
def test_bad_files_raise_clear_errors(tmp_path, bgr, make, reason, kind):
    path = tmp_path / "bad.png"
    make(path, bgr)
    with pytest.raises(ImageError, match=reason) as err:
        load_image(path)
    assert str(path) in str(err.value) and err.value.kind == kind


def test_decompression_bomb_is_refused_before_decoding():
    # 9000x9000 of zeros compresses to well under 1 MB of PNG but would decode to 243 MB of BGR
    bomb = cv2.imencode(".png", np.zeros((9000, 9000), np.uint8))[1].tobytes()
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageError, match="decompression bomb") as err:
        load_image(bomb)
    assert err.value.kind == "too_large"
    with pytest.raises(ImageError, match="over the limit") as err:
        load_image(np.zeros((300, 300, 3), np.uint8), max_pixels=50_000)
    assert err.value.kind == "too_large"


@pytest.mark.parametrize("array, reason", [
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((1, 1), np.uint8), "1x1"),
    (np.zeros((10, 10, 2), np.uint8), "unsupported array shape"),
    (np.full((10, 10), np.nan, np.float32), "NaN"),
])
def test_bad_arrays(array, reason):
    with pytest.raises(ImageError, match=reason):
        load_image(array)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="file not found") as err:
        load_image(tmp_path / "nope.jpg")
    assert err.value.kind == "unreadable"
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_folder_listing_is_recursive_and_keeps_named_files(tmp_path, bgr):
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "b.png"), bgr)
    cv2.imwrite(str(tmp_path / "a.jpg"), bgr)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in iter_image_paths([tmp_path])] == ["a.jpg", "b.png"]
    assert [p.name for p in iter_image_paths([tmp_path / "notes.txt"])] == ["notes.txt"]
