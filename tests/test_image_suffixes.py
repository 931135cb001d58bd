"""One list of image suffixes, the formats the loader reads (``moodlens.recognition.imageio.IMAGE_SUFFIXES``):
``moodlens analyze DIR``, ``moodlens event ingest --photos DIR`` and the dataset's image-folder reader take the
same files from a folder, and every file named like an image in a format the loader reads is read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from recognition_media import astronaut_bgr
from typer.testing import CliRunner

from moodlens.cli import app as cli
from moodlens.dataset.readers import read_image_folders
from moodlens.events.ingest import list_photos
from moodlens.recognition.imageio import FORMAT_SUFFIXES, IMAGE_SUFFIXES, load_image, sniff_format
from moodlens.recognition.inputs import NOT_IMAGE_REASON, VIDEO_SUFFIXES
from moodlens.spec import IMAGE_SIZE

#: Files in a photo folder that no command takes as images (by their names).
NOT_IMAGES = {"notes.txt": b"seating plan", "clip.mp4": b"\x00\x00\x00\x18ftypmp42", "photo.heic": b"\x00" * 32,
              "README": b"x"}


def write_image(path: Path, bgr: np.ndarray, plain: bool = False) -> None:
    """``bgr`` saved in the format ``path``'s suffix names: PGM as gray, PBM as black and white; ``plain``:
    the text variants of PBM, PGM and PPM."""
    suffix = path.suffix.lower()
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if suffix in (".pgm", ".pbm") else bgr
    if suffix == ".pbm":
        image = np.where(image > 127, 255, 0).astype(np.uint8)
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_PXM_BINARY, 0] if plain else []), path


def test_the_suffix_list_is_the_formats_the_loader_sniffs(tmp_path):
    bgr = cv2.resize(astronaut_bgr(), (64, 48))
    assert not IMAGE_SUFFIXES & VIDEO_SUFFIXES
    for fmt, suffixes in FORMAT_SUFFIXES.items():
        for suffix in suffixes:
            for plain in (False, True) if fmt == "pnm" else (False,):
                path = tmp_path / f"a{suffix}"
                write_image(path, bgr, plain)
                assert sniff_format(path.read_bytes()) == fmt, (suffix, plain)
                assert load_image(path).shape == bgr.shape, (suffix, plain)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """One photo per image suffix, again in upper case in a subfolder, a broken JPEG, and files that are not
    images."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    photo = cv2.resize(astronaut_bgr(), (192, 192))
    for suffix in sorted(IMAGE_SUFFIXES):
        write_image(folder / f"astronaut{suffix}", photo)
        write_image(folder / "more" / f"ASTRONAUT{suffix.upper()}", photo)
    (folder / "broken.jpg").write_bytes(b"GIF89a not really")
    for name, data in NOT_IMAGES.items():
        (folder / name).write_bytes(data)
    return folder


def test_analyze_and_ingest_photos_take_the_same_files(photo_folder, tmp_path):
    out = tmp_path / "analyze.json"
    r = CliRunner().invoke(cli, ["analyze", str(photo_folder), "--json", str(out)])
    assert r.exit_code == 0, r.output
    results = json.loads(out.read_text())
    not_taken = {e["filename"] for e in results["errors"] if e["kind"] in ("video", "not_image")}
    unreadable = [e["filename"] for e in results["errors"] if e["filename"] not in not_taken]
    analysed = [image["filename"] for image in results["images"]]
    taken = sorted(analysed + unreadable)
    assert {Path(f).name for f in not_taken} == set(NOT_IMAGES)
    assert [Path(f).name for f in unreadable] == ["broken.jpg"]
    # Every image suffix, in either case, is read: the list names only formats the loader reads.
    assert sorted(Path(f).suffix for f in analysed) == sorted([*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES)])
    assert NOT_IMAGE_REASON in r.output

    assert [str(p) for p in list_photos(photo_folder)] == taken
    db = f"sqlite:///{tmp_path / 'events.db'}"
    assert CliRunner().invoke(cli, ["event", "create", "gala", "--db", db]).exit_code == 0
    r = CliRunner().invoke(cli, ["event", "ingest", "gala", "--photos", str(photo_folder), "--no-progress",
                                 "--db", db])
    assert r.exit_code == 0, r.output
    faces = sum(len(image["faces"]) for image in results["images"])
    assert f"{len(analysed)} photos analysed, {faces} faces" in r.output
    assert re.findall(r"skipped (\S+): ", r.output) == unreadable


def test_the_dataset_reader_takes_every_image_suffix(tmp_path):
    happy = tmp_path / "train" / "happy"
    happy.mkdir(parents=True)
    face = cv2.resize(astronaut_bgr()[30:230, 160:340], (IMAGE_SIZE, IMAGE_SIZE))
    for i, suffix in enumerate(sorted(IMAGE_SUFFIXES)):
        write_image(happy / f"{i}{suffix}", face)
    for name, data in NOT_IMAGES.items():
        (happy / name).write_bytes(data)
    dataset = read_image_folders(tmp_path)
    assert len(dataset.images) == len(IMAGE_SUFFIXES) and not dataset.skipped
