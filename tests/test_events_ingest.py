"""Counting people in real videos (a real face crossing a background, written with OpenCV), photos, reports.

Every test runs the real detector, classifier and tracker; the store is SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import cv2
import pytest
import skimage.data
from events_media import Crossing, make_video
from stream_media import MjpegServer, video_jpegs

from moodlens.events.ingest import ingest_images, ingest_photos
from moodlens.events.report import build_report
from moodlens.events.report_files import write_report
from moodlens.events.store import EventStore
from moodlens.events.stream_ingest import ingest_camera, ingest_video
from moodlens.recognition.analyzer import Analyzer

FPS = 10.0  # track_gap_s=1.0 -> a track ends after 10 unseen frames
SIZE = (320, 240)  # small frames keep the tests fast; the benchmark uses 640x480


# Detection and tracking do not depend on the backend: most tests run on SQLite only, the rest on both.
sqlite_only = pytest.mark.parametrize("event_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.fixture
def store(event_db_url):
    s = EventStore(event_db_url)
    s.create_event("gala")
    yield s
    s.close()


def people_per_source(store: EventStore, event: str = "gala") -> dict[str, int]:
    df = store.observations(event)
    return df.groupby("source")["track"].nunique().to_dict()


def test_one_person_crossing_is_one_track(store, analyzer, tmp_path):
    video = make_video(tmp_path / "one.avi", [Crossing(3, 33)], frames=36, fps=FPS, size=SIZE)
    result = ingest_video(store, "gala", video, analyzer=analyzer, progress=False)
    assert result.finished and result.frames == 36
    df = store.observations("gala")
    assert result.faces == len(df) >= 27  # the face is found in (nearly) every one of its 30 frames
    assert df["track"].nunique() == 1 == result.new_tracks
    assert df["frame"].between(3, 32).all()
    assert (df["box_w"] > 20).all()


def test_two_people_are_two_tracks(store, analyzer, tmp_path):
    crossings = [Crossing(0, 30, y=20), Crossing(2, 32, y=310, left_to_right=False, mirror=True)]
    video = make_video(tmp_path / "two.avi", crossings, frames=32, fps=FPS, size=SIZE)
    ingest_video(store, "gala", video, analyzer=analyzer, progress=False)
    assert people_per_source(store) == {"two.avi": 2}
    report = build_report(store, "gala")
    assert report.people == 2 and report.data["totals"]["stream_tracks"] == 2
    assert report.data["overall"]["hidden_by"] == "min_group_size"  # 2 < 5 people: no expression breakdown


@sqlite_only
def test_reentry_after_long_gap_counts_twice_short_occlusion_once(store, analyzer, tmp_path):
    reentry = make_video(tmp_path / "reentry.avi", [Crossing(0, 20), Crossing(45, 65)], frames=65, fps=FPS, size=SIZE)
    occluded = make_video(tmp_path / "occluded.avi", [Crossing(0, 40, hidden=(15, 19))], frames=40, fps=FPS, size=SIZE)
    for video in (reentry, occluded):
        ingest_video(store, "gala", video, analyzer=analyzer, track_gap_s=1.0, progress=False)
    # Leaving and coming back 2.5 s later is a new track; hidden for 0.4 s (< track_gap_s) is the same one.
    assert people_per_source(store) == {"reentry.avi": 2, "occluded.avi": 1}
    definition = build_report(store, "gala").data["definitions"]["people"]
    assert "counted again" in definition and "tracks" in definition


@sqlite_only
def test_every_nth_frame_keeps_the_track(store, analyzer, tmp_path):
    video = make_video(tmp_path / "every.avi", [Crossing(0, 40)], frames=40, fps=FPS, size=SIZE)
    result = ingest_video(store, "gala", video, every=3, analyzer=analyzer, progress=False)
    assert result.frames == 14
    df = store.observations("gala")
    assert (df["frame"] % 3 == 0).all() and df["track"].nunique() == 1


@sqlite_only
def test_video_timestamps_follow_the_frame_rate(store, analyzer, tmp_path):
    video = make_video(tmp_path / "ts.avi", [Crossing(0, 20)], frames=20, fps=FPS, size=SIZE)
    ingest_video(store, "gala", video, analyzer=analyzer, start=datetime.fromisoformat("2025-06-01T18:00:00+00:00"),
                 progress=False)
    df = store.observations("gala")
    first = df.iloc[0]
    last = df.iloc[-1]
    assert str(first["ts"]) == f"2025-06-01 18:00:{first['frame'] / FPS:06.3f}".rstrip("0").rstrip(".")
    assert (last["ts"] - first["ts"]).total_seconds() == pytest.approx((last["frame"] - first["frame"]) / FPS)


@sqlite_only
def test_photos_count_faces_per_photo_and_skip_bad_files(store, analyzer, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = skimage.data.astronaut()[:, :, ::-1]
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.jpg"), astronaut)
    cv2.imwrite(str(folder / "coffee.png"), skimage.data.coffee()[:, :, ::-1])  # no person
    (folder / "broken.jpg").write_bytes(b"not an image")
    result = ingest_photos(store, "gala", folder, analyzer=analyzer, progress=False)
    assert (result.frames, result.faces, result.skipped) == (4, 3, 1)  # photos analysed, faces, files skipped
    report = build_report(store, "gala")
    # The same astronaut in 3 photos counts as 3: the report says people in several photos count more than once.
    assert report.data["totals"]["photo_faces"] == 3
    assert "more than once" in report.data["definitions"]["people"]
    again = ingest_photos(store, "gala", folder, analyzer=analyzer, progress=False)
    assert again.frames == 0 and build_report(store, "gala").faces == 3  # nothing is counted twice


@sqlite_only
def test_uploaded_images_join_an_event(store, analyzer):
    ok, jpg = cv2.imencode(".jpg", skimage.data.astronaut()[:, :, ::-1])
    result = ingest_images(store, "gala", [("a.jpg", jpg.tobytes()), ("b.jpg", jpg.tobytes())], analyzer=analyzer)
    assert (result.frames, result.faces) == (2, 2)
    ingest_images(store, "gala", [("c.jpg", jpg.tobytes())], analyzer=analyzer)
    df = store.observations("gala")
    assert len(df) == 3 and df["track"].nunique() == 3 and set(df["kind"]) == {"upload"}


def test_html_report_is_self_contained(store, analyzer, tmp_path):
    crossings = [Crossing(i * 14, i * 14 + 20, y=20 + 140 * (i % 3)) for i in range(6)]
    video = make_video(tmp_path / "crowd.avi", crossings, frames=90, fps=FPS, size=SIZE)
    ingest_video(store, "gala", video, analyzer=analyzer, track_gap_s=0.5, progress=False)
    report = build_report(store, "gala")
    assert report.people == 6
    paths = write_report(report, tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == ["outside.csv", "report.html", "report.json", "sources.csv", "summary.csv", "timeline.csv"]
    html = (tmp_path / "out" / "report.html").read_text()
    # Opens offline: every image is inline, nothing is fetched.
    assert re.findall(r'<img[^>]+src="data:image/png;base64,', html)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "Valence index = 100" in html and "fear" in html and "disgust" in html
    assert "crowd.avi" in html and ">6<" in html


@sqlite_only
def test_camera_ingest_runs_until_stopped_and_continues(store, analyzer, tmp_path):
    """A real MJPEG-over-HTTP camera served by the test, read through its URL."""
    video = make_video(tmp_path / "cam.avi", [Crossing(0, 30)], frames=30, fps=FPS, size=SIZE)
    before = datetime.now(UTC).replace(tzinfo=None)
    with MjpegServer(video_jpegs(video), fps=20.0) as camera:  # paced, so frames are left for the restart
        first = ingest_camera(store, "gala", camera.url, max_frames=12, analyzer=analyzer, progress=False,
                              drop_late_frames=False)
        assert (first.frames, first.new_tracks, first.finished) == (12, 1, False)
        [src] = store.sources("gala")
        assert (src.kind, src.label, src.frames_done) == ("camera", camera.url, 12)
        # Restarting continues the source: frame numbers go on, and the person in view is a new track.
        second = ingest_camera(store, "gala", camera.url, max_frames=1, analyzer=analyzer, progress=False)
    assert second.frames == 1 and second.resumed_from == 12
    df = store.observations("gala")
    assert sorted(df["track"].unique()) == [1, 2] and df["frame"].max() == 12
    assert (df["ts"] >= before).all()  # camera frames are stamped when read
    assert len(store.sources("gala")) == 1


@sqlite_only
def test_camera_ingest_stops_when_asked(store, analyzer, tmp_path):
    video = make_video(tmp_path / "cam.avi", [Crossing(0, 30)], frames=30, fps=FPS, size=SIZE)
    stop = threading.Event()
    with MjpegServer(video_jpegs(video), fps=FPS) as camera:
        threading.Timer(1.5, stop.set).start()
        result = ingest_camera(store, "gala", camera.url, stop=stop, analyzer=analyzer, progress=False)
    assert 0 < result.frames < 30 and not result.finished
    assert store.sources("gala")[0].frames_done == result.frames  # the last batch was committed
