"""End-to-end video speed of the stream engine against the previous release's loop, in the same run.

For 640x480 and 1280x720 H.264 videos with 1-3 real faces (scikit-image's astronaut, moving; face widths 5-11 %
of the frame), frames/s from the first decoded frame to the last analysed one (decoding included):

* the previous release's loop (``benchmarks/previous_video_loop.py``: one thread, ``cv2.VideoCapture.read()``
  then ``VideoAnalyzer.process``), detecting every frame (its default) and every 3rd frame, at the detection
  scale its defaults used;
* the stream engine (``moodlens.stream.run_stream``: decode, detect/track and classify on their own threads)
  at several detection schedules and detection resolutions (``max_side``).

Beside each: face recall on the benchmark video (true faces matched by a box with IoU >= 0.3 in every frame)
and the smallest face found there; then the smallest face each detection resolution finds at all (a head
pasted at decreasing sizes), classifier faces/s at batch 64, and the cost of encoding the annotated H.264 copy.

    python benchmarks/bench_pipeline.py [--frames 300] [--sizes 640x480,1280x720]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_media import background, face_box_in_head, head, recall, write_faces_video  # noqa: E402
from machine import machine_facts  # noqa: E402
from previous_video_loop import Frame as OldFrame  # noqa: E402
from previous_video_loop import VideoAnalyzer  # noqa: E402

from moodlens.recognition.analyzer import Analyzer  # noqa: E402
from moodlens.settings import DEFAULTS, STREAM_DEFAULTS  # noqa: E402
from moodlens.stream import CallbackSink, VideoFile, VideoSink, run_stream  # noqa: E402
from moodlens.train.speed import faces_per_second  # noqa: E402

#: (detect_every, max_side) settings of the stream engine that are measured; the first is the headline.
ENGINE_SETTINGS = ((3, 320), (2, 320), (3, 640), (1, 640))


def previous_loop(path: Path, analyzer: Analyzer, every: int) -> tuple[float, float, dict[int, np.ndarray]]:
    """(frames/s, CPU ms per frame) of the previous release's loop on a file, decode included; its boxes per frame."""
    runner = VideoAnalyzer(analyzer, every=every)
    cap = cv2.VideoCapture(str(path))
    found, index = {}, 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        ok, image = cap.read()
        if not ok:
            break
        found[index] = runner.process(OldFrame(index, index / 30, image)).faces.boxes
        index += 1
    cap.release()
    return index / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / max(index, 1), found


def engine(path: Path, analyzer: Analyzer, detect_every: int) -> tuple[float, float, dict[int, np.ndarray]]:
    """(frames/s, CPU ms per frame, all threads) of the stream engine on a file, decode included; its boxes."""
    found: dict[int, np.ndarray] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_stream(VideoFile(path), analyzer, [CallbackSink(lambda f, faces: found.__setitem__(f.index,
                                                                                                    faces.boxes))],
                         STREAM_DEFAULTS.with_(detect_every=detect_every))
    n = max(summary.frames, 1)
    return summary.frames / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / n, found


def smallest_detectable(analyzer: Analyzer, size: tuple[int, int], relative_face: tuple[float, ...]) -> int | None:
    """Smallest face width (px) this analyzer's detection finds in a ``size`` frame (one head, pasted)."""
    width, height = size
    rx, ry, rw, rh = relative_face
    smallest = None
    for face_w in (96, 80, 64, 56, 48, 40, 34, 28, 24, 20, 16, 14, 12, 10):
        scale = face_w / (rw * head().shape[1])
        sprite = cv2.resize(head(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        img = background(width, height)
        sh, sw = sprite.shape[:2]
        x, y = width // 8, height // 8
        if y + sh > height or x + sw > width:  # this face size does not fit in the frame
            continue
        img[y:y + sh, x:x + sw] = sprite
        truth = np.array([[x + rx * sw, y + ry * sh, rw * sw, rh * sh]])
        got = analyzer.detect(img).boxes
        from moodlens.recognition.track import iou_matrix

        if len(got) and iou_matrix(truth, got).max() >= 0.3:
            smallest = face_w
        else:
            break
    return smallest


def encode_cost(path: Path, out: Path, frames: int) -> float:
    """Milliseconds per frame of writing the annotated H.264 copy (annotate + convert + libx264), one thread."""
    from moodlens.recognition.faces import Faces
    from moodlens.stream.frames import Frame

    cap = cv2.VideoCapture(str(path))
    images = []
    while len(images) < frames:
        ok, image = cap.read()
        if not ok:
            break
        images.append(image)
    sink = VideoSink(out, 30.0)
    faces = Faces([[40, 40, 60, 70]], [0.9], np.full((1, 7), 1 / 7), [0])
    t0 = time.perf_counter()
    for i, image in enumerate(images):
        sink.write(Frame(i, i / 30, image), faces)
    sink.close(None)  # type: ignore[arg-type] - the video sink does not read the summary
    return 1000 * (time.perf_counter() - t0) / max(len(images), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--sizes", default="640x480,1280x720")
    args = ap.parse_args()
    facts = machine_facts(("numpy", "opencv-python-headless", "onnxruntime", "yuface", "av"))
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()))
    base = Analyzer()
    relative_face = face_box_in_head(base.detect)
    print(f"detector: {base.detector.name}; model: {base.classifier.name}; classifier threads: 1; "
          f"previous loop's detection scale: max_side {DEFAULTS.max_side}\n")
    sides = sorted({side for _, side in ENGINE_SETTINGS} | {DEFAULTS.max_side})
    analyzers = {side: Analyzer(max_side=side) for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for size in [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]:
            path = Path(tmp) / f"faces-{size[0]}x{size[1]}.mp4"
            truth = write_faces_video(path, args.frames, size, relative_face)
            print(f"{size[0]}x{size[1]}, {args.frames} frames, 1-3 faces "
                  f"({', '.join(f'{w * size[0]:.0f}' for w in (0.11, 0.075, 0.05))} px wide), H.264; "
                  "frames/s end to end (decode included), recall, smallest face found:")
            old_fps = {}
            for every in (1, 3):
                fps, cpu, found = previous_loop(path, analyzers[DEFAULTS.max_side], every)
                old_fps[every] = fps
                r, small = recall(truth, found)
                print(f"  previous release's loop, --every {every}, max_side {DEFAULTS.max_side}: {fps:6.1f} frames/s "
                      f"({cpu:.1f} ms CPU/frame); recall {r:.3f}, smallest found {small:.0f} px")
            for detect_every, side in ENGINE_SETTINGS:
                fps, cpu, found = engine(path, analyzers[side], detect_every)
                r, small = recall(truth, found)
                print(f"  stream engine, --detect-every {detect_every}, max_side {side}: {fps:6.1f} frames/s "
                      f"({cpu:.1f} ms CPU/frame; {fps / old_fps[1]:.1f}x the previous loop's default, "
                      f"{fps / old_fps[3]:.1f}x its --every 3); recall {r:.3f}, smallest found {small:.0f} px")
            print("  smallest face the detector finds at all in this frame size (one head, pasted): "
                  + ", ".join(f"max_side {side}: {smallest_detectable(a, size, relative_face)} px"
                              for side, a in analyzers.items()))
            print(f"  annotated H.264 copy (PyAV libx264 veryfast): {encode_cost(path, Path(tmp) / 'a.mp4', 60):.1f} "
                  "ms per frame to annotate and encode\n")
    for batch in (1, 64):
        rate = faces_per_second(base.classifier.predict, batch, seconds=1.5)
        print(f"classifier, batch {batch}: {rate:.0f} faces/s")
    print("\nnote: every other process on the machine slows these figures down (load average above).")


if __name__ == "__main__":
    main()
