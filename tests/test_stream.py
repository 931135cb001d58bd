"""The stream engine end to end with real parts: videos written with OpenCV, an MJPEG-over-HTTP camera served
by the test (read by OpenCV's FFmpeg backend), the real detector, classifier, tracker, SQLite store and web app.

One pipeline: the same files give the same tracks through every command. Live URLs: drop and reconnect
(offline interval stored and reported), frames dropped and counted when analysis is slower than the source.
Bad indices and URLs, still images: clear one-line errors. Annotated videos: H.264 that Chromium plays.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skimage.data
from events_media import Crossing, make_video
from fastapi.testclient import TestClient
from stream_media import MjpegServer, video_jpegs
from typer.testing import CliRunner
from web_access import ACCESS, OPERATOR

from moodlens.cli import app
from moodlens.events.ingest import IngestResult
from moodlens.events.report import build_report
from moodlens.events.report_files import write_report
from moodlens.events.store import EventStore
from moodlens.events.stream_ingest import StoreSink, ingest_camera, ingest_streams
from moodlens.recognition.analyzer import Analyzer
from moodlens.settings import STREAM_DEFAULTS
from moodlens.stream import CallbackSink, StreamURL, analyze_video, run_stream
from moodlens.stream.summary import Segments
from moodlens.web.app import create_app

FPS = 10.0
SIZE = (320, 240)
PEOPLE = {
    1: [Crossing(2, 30)],
    2: [Crossing(0, 30, y=20), Crossing(4, 34, y=310, left_to_right=False, mirror=True)],
    3: [Crossing(0, 28, y=20), Crossing(3, 33, y=170, left_to_right=False, mirror=True), Crossing(8, 36, y=320)],
}
FRAMES = 36
runner = CliRunner()


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def spans(rows: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(first frame, last frame, frames) of each track, from (frame, track) rows: tracks without their numbers."""
    seen: dict[int, list[int]] = {}
    for frame, track in rows:
        seen.setdefault(int(track), []).append(int(frame))
    return sorted((min(f), max(f), len(f)) for f in seen.values())


def csv_spans(path: Path) -> list[tuple[int, int, int]]:
    return spans([(r["frame"], r["track_id"]) for r in csv.DictReader(io.StringIO(path.read_text()))])


def store_spans(db: str, event: str) -> list[tuple[int, int, int]]:
    with EventStore(db) as store:
        df = store.observations(event)
    return spans(list(zip(df["frame"], df["track"], strict=True)))


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def live_page_spans(jpegs: list[bytes]) -> list[tuple[int, int, int]]:
    with TestClient(create_app(workers=1, access=ACCESS), headers=OPERATOR) as client, \
            client.websocket_connect("/api/v1/live", headers={"Origin": "http://testserver"}) as ws:
        rows = []
        for i, jpeg in enumerate(jpegs):
            ws.send_bytes(jpeg)
            rows += [(i, f["track_id"]) for f in ws.receive_json()["faces"]]
    return spans(rows)


@pytest.mark.parametrize("people", sorted(PEOPLE))
def test_same_tracks_through_every_command(people, tmp_path):
    video = make_video(tmp_path / f"people{people}.avi", PEOPLE[people], frames=FRAMES, fps=FPS, size=SIZE)
    db = f"sqlite:///{tmp_path / 'events.db'}"
    cli("event", "create", "file", "--db", db)
    cli("event", "create", "url", "--db", db)
    jpegs = video_jpegs(video)

    cli("video", str(video), "--csv", str(tmp_path / "video.csv"), "--no-progress")
    reference = csv_spans(tmp_path / "video.csv")
    assert len(reference) == people and all(n >= 20 for _, _, n in reference), reference

    cli("camera", "--index", str(video), "--headless", "--csv", str(tmp_path / "camera-file.csv"))
    cli("event", "ingest", "file", "--video", str(video), "--db", db, "--no-progress")
    with MjpegServer(jpegs) as server:
        cli("camera", "--index", server.url, "--headless", "--csv", str(tmp_path / "camera-url.csv"),
            "--max-frames", str(FRAMES), "--no-drop-late-frames")
    with MjpegServer(jpegs) as server:
        cli("event", "ingest", "url", "--camera", server.url, "--db", db, "--max-frames", str(FRAMES),
            "--no-drop-late-frames", "--no-progress")

    results = {
        "camera FILE": csv_spans(tmp_path / "camera-file.csv"),
        "camera URL": csv_spans(tmp_path / "camera-url.csv"),
        "event ingest --video": store_spans(db, "file"),
        "event ingest --camera URL": store_spans(db, "url"),
        "live page": live_page_spans(jpegs),
    }
    assert results == dict.fromkeys(results, reference)


def test_several_sources_in_one_ingest_match_single_ingests(analyzer, tmp_path):
    videos = [make_video(tmp_path / f"v{n}.avi", PEOPLE[n], frames=FRAMES, fps=FPS, size=SIZE) for n in (1, 2)]
    camera_video = make_video(tmp_path / "cam.avi", PEOPLE[3], frames=FRAMES, fps=FPS, size=SIZE)
    db = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore(db) as store:
        for name in ("together", "alone"):
            store.create_event(name)
        with MjpegServer(video_jpegs(camera_video)) as server:
            together = ingest_streams(store, "together", videos, [server.url], analyzer, progress=False,
                                      max_frames=FRAMES, drop_late_frames=False)
        with MjpegServer(video_jpegs(camera_video)) as server:
            alone = [ingest_streams(store, "alone", [v], analyzer=analyzer, progress=False)[0] for v in videos]
            alone.append(ingest_camera(store, "alone", server.url, analyzer, progress=False, max_frames=FRAMES,
                                       drop_late_frames=False))
        assert [(r.frames, r.faces, r.new_tracks) for r in together] == [(r.frames, r.faces, r.new_tracks)
                                                                         for r in alone]
        assert [r.new_tracks for r in together] == [1, 2, 3]
        a, b = store.observations("together"), store.observations("alone")
    for label in ("v1.avi", "v2.avi", "127.0.0.1"):  # the camera's URL differs in its port
        rows = [sorted(zip(part["frame"], part["track"], part["box_w"], strict=True))
                for df in (a, b) for part in [df[df["source"].str.contains(label, regex=False)]]]
        assert rows[0] and rows[0] == rows[1], label


def test_url_source_drop_and_reconnect_is_stored_and_reported(analyzer, tmp_path):
    video = make_video(tmp_path / "one.avi", PEOPLE[1], frames=FRAMES, fps=FPS, size=SIZE)
    db = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore(db) as store, MjpegServer(video_jpegs(video), drop_after=(12,), down_s=1.5) as server:
        store.create_event("gala")
        result = ingest_camera(store, "gala", server.url, analyzer, progress=False, max_frames=FRAMES,
                               drop_late_frames=False, open_timeout_s=2.0)
        assert server.connections == 2 and server.sent == FRAMES
        assert result.frames == FRAMES and len(result.offline) == 1
        [src] = store.sources("gala")
        [outage] = store.outages("gala")[src.id]
        assert outage.ended_at is not None and (outage.ended_at - outage.started_at).total_seconds() >= 1.0
        df = store.observations("gala")
        assert df["frame"].min() < 12 and df["frame"].max() >= FRAMES - 10  # frames from before and after the drop
        assert (df["ts"][df["frame"] >= 12].min() - pd_ts(outage.ended_at)).total_seconds() > -1.0
        report = build_report(store, "gala")
        [row] = report.data["sources"]
        assert row["offline"] and row["offline"][0]["from"] and row["offline"][0]["to"]
        paths = write_report(report, tmp_path / "report", ["html"])
    assert "offline" in paths[0].read_text()
    # The same drop, ingested again, continues the source's frame numbers after a restart.


def pd_ts(value):  # noqa: ANN001, ANN201 - datetime -> pandas Timestamp
    import pandas as pd

    return pd.Timestamp(value)


def test_frames_are_dropped_and_counted_when_analysis_is_slower(analyzer, tmp_path):
    video = make_video(tmp_path / "one.avi", PEOPLE[1], frames=FRAMES, fps=FPS, size=SIZE)
    jpegs = video_jpegs(video) * 2
    seen: list[int] = []

    def slow_sink(frame, faces):  # noqa: ANN001 - a consumer that takes 0.1 s a frame, 4x slower than the camera
        seen.append(frame.index)
        time.sleep(0.1)

    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.create_event("gala")
    with MjpegServer(jpegs, fps=40.0) as server:
        settings = STREAM_DEFAULTS.with_(max_offline_s=0.5, open_timeout_s=2.0)
        source = StreamURL(server.url, settings)
        src = store.open_source("gala", "camera", source.info.uri, label=source.info.name)
        stored = StoreSink(store, src, source, IngestResult("gala", source.info.name, "camera"), 1.0, None, False)
        summary = run_stream(source, analyzer, [CallbackSink(slow_sink), stored], settings)
    assert store.get_source(src.id).frames_dropped == summary.frames_dropped == stored.result.frames_dropped
    assert build_report(store, "gala").data["sources"][0]["frames_dropped"] == summary.frames_dropped
    store.close()
    assert summary.frames == len(seen) < len(jpegs) / 2
    assert summary.frames_dropped >= len(jpegs) / 3
    assert summary.frames + summary.frames_dropped <= len(jpegs)
    assert np.diff(seen).max() > 1  # the analysed frames skip the dropped ones, in order
    assert summary.ended_early and "offline for more than" in summary.ended_early  # the stream ended


def test_bad_camera_indices_and_urls_are_clear_errors(tmp_path):
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cli("event", "create", "gala", "--db", db)
    silent = socket.socket()  # accepts connections, never answers: must time out, not hang
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    cases = [
        (["camera", "--index", "-1", "--headless"], "camera -1: a camera index is 0 or more"),
        (["camera", "--index", "7", "--headless"], "camera 7"),
        (["event", "ingest", "gala", "--camera", "-1", "--db", db], "camera -1: a camera index is 0 or more"),
        (["event", "ingest", "gala", "--camera", "http://127.0.0.1:1/cam.mjpg", "--db", db,
          "--open-timeout-s", "2"], "cannot open the stream within 2 s"),
        (["event", "ingest", "gala", "--camera", f"rtsp://user:secret@127.0.0.1:{port}/cam", "--db", db,
          "--open-timeout-s", "1"], "rtsp://user@127.0.0.1"),
        (["camera", "--index", f"http://127.0.0.1:{port}/cam.mjpg", "--headless", "--open-timeout-s", "1"],
         "cannot open the stream within 1 s"),
        (["event", "ingest", "gala", "--camera", "ftp://127.0.0.1/cam", "--db", db], "unsupported stream URL"),
        (["event", "ingest", "gala", "--camera", str(tmp_path / "talk.mp4"), "--db", db], "ingest video files with"),
    ]
    try:
        for args, message in cases:
            started = time.monotonic()
            result = runner.invoke(app, args)
            assert result.exit_code == 1 and message in result.output, (args, result.output)
            assert "Traceback" not in result.output and "secret" not in result.output
            assert time.monotonic() - started < 120, args  # bounded by the open timeout, on a busy machine too
    finally:
        silent.close()
    with EventStore(db) as store:
        assert store.sources("gala") == []  # nothing half-made


def test_still_images_are_refused(tmp_path):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), skimage.data.astronaut()[:, :, ::-1])
    renamed = tmp_path / "holiday.mp4"  # the content decides, not the name
    renamed.write_bytes(cv2.imencode(".jpg", skimage.data.astronaut())[1].tobytes())
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cli("event", "create", "gala", "--db", db)
    for args in (["video", str(photo)], ["video", str(renamed)],
                 ["event", "ingest", "gala", "--video", str(photo), "--db", db]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "a still image" in result.output and "--photos" in result.output, args
    with EventStore(db) as store:
        assert store.sources("gala") == []


def test_a_folder_is_not_a_video(tmp_path):
    folder = tmp_path / "clips.mp4"
    folder.mkdir()
    result = runner.invoke(app, ["video", str(folder)])
    assert result.exit_code == 1 and "a folder, not a video file" in result.output, result.output


def test_output_paths_that_cannot_be_written_are_clear_errors_before_analysis(tmp_path):
    video = make_video(tmp_path / "talk.avi", PEOPLE[1], frames=4, fps=FPS, size=SIZE)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    (tmp_path / "a-folder.mp4").mkdir()
    cases = [("--out", a_file / "annotated.mp4", "notes.txt is a file, not a folder"),
             ("--out", tmp_path / "a-folder.mp4", "a folder, not a file"),
             ("--csv", a_file / "faces.csv", "notes.txt is a file, not a folder"),
             ("--json", tmp_path, "a folder, not a file"),
             ("--json", a_file / "sub" / "summary.json", "is a file, not a folder")]
    if hasattr(os, "mkfifo"):  # a pipe nobody reads would block the writer forever
        os.mkfifo(tmp_path / "pipe.csv")
        cases.append(("--csv", tmp_path / "pipe.csv", "a pipe that nothing reads"))
    for option, path, message in cases:
        result = runner.invoke(app, ["video", str(video), "--no-progress", option, str(path)])
        assert result.exit_code == 1 and "cannot write to" in result.output and message in result.output, \
            (option, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "frames" not in result.output  # refused before the video was analysed
    assert {p.name for p in tmp_path.iterdir()} <= {"a-folder.mp4", "notes.txt", "talk.avi", "pipe.csv"}
    # A folder that does not exist yet is made.
    cli("video", str(video), "--no-progress", "--csv", str(tmp_path / "new" / "faces.csv"))
    assert (tmp_path / "new" / "faces.csv").read_text().startswith("frame,time_s")


@pytest.mark.parametrize("height, width", [(1, 1), (5, 1), (1, 7)])
def test_annotated_copy_of_frames_under_two_pixels(height, width, tmp_path):
    from moodlens.recognition.faces import Faces
    from moodlens.stream import Frame, VideoSink

    sink = VideoSink(tmp_path / "tiny.mp4", fps=FPS)
    for i in range(3):
        sink.write(Frame(i, i / FPS, np.full((height, width, 3), 90, np.uint8)), Faces.empty())
    sink.close(None)
    with av.open(str(tmp_path / "tiny.mp4")) as container:
        stream = container.streams.video[0]
        expected = (max(2, width - width % 2), max(2, height - height % 2))
        assert (stream.width, stream.height) == expected
        assert sum(1 for _ in container.decode(stream)) == 3


def test_annotated_video_is_h264_that_browsers_play(analyzer, tmp_path):
    video = make_video(tmp_path / "two.avi", PEOPLE[2], frames=FRAMES, fps=FPS, size=(640, 360))
    out = tmp_path / "annotated.mp4"
    summary = analyze_video(video, analyzer, out=out, progress=False)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (640, 360) and float(stream.average_rate) == pytest.approx(FPS)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == summary.frames == FRAMES
    head = out.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))
    # Labels are drawn legibly: the filled label box above each face is at least 16 px tall.
    mid = frames[15]
    yellow = np.all(np.abs(mid.astype(int) - (0, 200, 255)) < 60, axis=2)  # happy's colour (BGR)
    rows = np.flatnonzero(yellow.sum(1) > 40)
    assert len(rows) >= 16, "no legible label found"


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="/usr/bin/chromium not found")
def test_chromium_plays_the_annotated_video(analyzer, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    video = make_video(tmp_path / "one.avi", PEOPLE[1], frames=FRAMES, fps=FPS, size=(640, 360))
    analyze_video(video, analyzer, out=tmp_path / "annotated.mp4", progress=False)
    handler = functools.partial(QuietFiles, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
            page.set_content(f'<video id="v" muted src="http://127.0.0.1:{httpd.server_address[1]}/annotated.mp4">')
            played = page.evaluate("""() => new Promise((done) => {
                const v = document.getElementById("v");
                const report = () => done({width: v.videoWidth, height: v.videoHeight, time: v.currentTime});
                const check = () => v.play().then(() => setTimeout(report, 600), (e) => done({error: String(e)}));
                v.onerror = () => done({error: "media error " + (v.error && v.error.code)});
                if (v.readyState >= 2) check(); else v.onloadeddata = check;
                setTimeout(() => done({error: "timeout", readyState: v.readyState}), 15000);
            })""")
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert played.get("width") == 640 and played.get("height") == 360 and played.get("time", 0) > 0.2, played


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_segments_over_time_merge_short_noise():
    """A face sad for 6 s then happy for 14 s, with one-frame blips and a 0.5 s flicker: two segments."""
    seg = Segments(min_s=2.0)
    sad, happy, fear = (np.eye(7)[i] * 0.7 + 0.3 / 7 for i in (4, 3, 2))
    for k in range(200):  # 10 frames a second, 20 s
        t = k / 10
        probs = sad if t < 6 else happy
        if k in (17, 95) or 120 <= k < 125:
            probs = fear if k != 95 else sad
        seg.add(t, probs)
    got = [(s["emotion"], s["start_s"], s["end_s"]) for s in seg.to_list()]
    assert got == [("sad", 0.0, 6.0), ("happy", 6.0, 19.9)]


def test_video_summary_json_and_cli_show_segments(tmp_path):
    video = make_video(tmp_path / "two.avi", PEOPLE[2], frames=FRAMES, fps=FPS, size=SIZE)
    output = cli("video", str(video), "--json", str(tmp_path / "s.json"), "--no-progress", "--min-segment-s", "1")
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["frames"] == FRAMES and data["completed"] and data["frames_dropped"] == 0
    assert data["overall"]["segments"][0]["start_s"] == 0.0 and data["overall"]["timeline"][0]["faces"] > 0
    for track in data["tracks"]:
        assert track["segments"][0]["start_s"] == track["first_s"]
        assert track["segments"][-1]["end_s"] == track["last_s"]
    assert "over time:" in output and output.count("track ") == 2


def test_push_source_drops_oldest_when_full():
    from moodlens.stream import PushSource

    source = PushSource("page", capacity=2)
    image = np.zeros((8, 8, 3), np.uint8)
    for _ in range(5):
        source.push(image)
    assert source.dropped == 3
    frames = [source.take(), source.take(), source.take()]
    assert [f.index for f in frames[:2]] == [3, 4] and frames[2] is None and frames[1].dropped == 3
