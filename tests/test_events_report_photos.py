"""Real photos a year apart (EXIF dates, real detector and classifier): the report stays small and fast."""

from __future__ import annotations

import io
import time
from datetime import datetime
from pathlib import Path

import pytest
import skimage.data
from PIL import Image

from moodlens.card import file_sha256
from moodlens.events.ingest import ingest_photos
from moodlens.events.report import build_report
from moodlens.events.report_html import render_html
from moodlens.events.store import EventStore
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.classifier import default_model_path


def photo_taken(path: Path, when: datetime) -> None:
    """The astronaut as a JPEG whose EXIF DateTimeOriginal says ``when``."""
    image = Image.fromarray(skimage.data.astronaut())
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.mark.parametrize("far", [datetime(2026, 6, 1, 18, 30), datetime(9999, 12, 31, 23, 0)])
def test_photos_a_year_apart_build_a_report_in_under_5_s(tmp_path, analyzer, far):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        photo_taken(folder / f"gala-{i}.jpg", datetime(2025, 6, 1, 18, 10 * i))
    photo_taken(folder / "wrong-clock.jpg", far)
    with EventStore(tmp_path / "events.db") as store:
        store.create_event("gala")
        result = ingest_photos(store, "gala", folder, analyzer=analyzer, progress=False)
        assert (result.frames, result.faces) == (7, 7)
        started, cpu = time.perf_counter(), time.process_time()
        report = build_report(store, "gala")
        html = render_html(report)
        # CPU time of this process: other processes on a busy machine cannot make it fail.
        assert time.process_time() - cpu < 5, f"{time.perf_counter() - started:.1f} s wall"
        [src] = store.sources("gala")
    d = report.data
    assert d["period"]["bin"] == "1 minute" and d["period"]["bins"] == 51 and report.people == 6
    assert d["outside"] == [{"source": "photos", "side": "after", "observations": 1, "first": far.isoformat(),
                             "last": far.isoformat()}]
    assert "wrong clock" not in html and far.isoformat() in html and "1 observation outside the report period" in html
    # The model the photos were analysed with is recorded with the source and reported from there.
    assert src.model_sha256 == file_sha256(default_model_path()) and d["models"][0]["recorded"]
