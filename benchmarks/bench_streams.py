"""How many live 640x480 cameras at 10 frames/s one machine sustains without dropping frames.

Each camera is a real MJPEG-over-HTTP stream served from this process (``moodlens.stream.mjpeg``: JPEG frames of
1-3 moving faces, paced at ``--fps``), read by OpenCV's FFmpeg backend. For N = 1, 2, ... cameras, one
``ingest_streams`` run (the stream engine with the SQLite event store as sink, faces of all cameras classified
in shared batches) reads ``--seconds`` of each; the table shows frames analysed and dropped per N. It stops
after the first N that drops more than ``--max-drop`` of its frames.

    python benchmarks/bench_streams.py [--seconds 20] [--fps 10] [--max-cameras 8] [--detect-every 3] [--max-side 320]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_media import face_box_in_head, write_faces_video  # noqa: E402
from machine import machine_facts  # noqa: E402

from moodlens.events.store import EventStore  # noqa: E402
from moodlens.events.stream_ingest import ingest_streams  # noqa: E402
from moodlens.recognition.analyzer import Analyzer  # noqa: E402
from moodlens.stream.mjpeg import MjpegServer, video_jpegs  # noqa: E402


def camera_jpegs(folder: Path, seconds: float, fps: float, analyzer: Analyzer) -> list[bytes]:
    """JPEG frames of the benchmark camera (640x480, 1-3 moving faces): ``seconds`` at ``fps`` and two seconds
    more, so that a camera never runs out before its reader has read ``seconds`` of it."""
    video = folder / "cam.mp4"
    write_faces_video(video, 150, (640, 480), face_box_in_head(analyzer.detect))
    jpegs = video_jpegs(video, quality=80)
    frames = int(seconds * fps)
    return (jpegs * (frames // len(jpegs) + 2))[: frames + 2 * int(fps)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--max-cameras", type=int, default=16)
    ap.add_argument("--detect-every", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--max-drop", type=float, default=0.01, help="share of dropped frames that ends the search")
    args = ap.parse_args()
    out: dict = {"machine": machine_facts(("numpy", "opencv-python-headless", "onnxruntime", "yuface")),
                 "camera": f"640x480 MJPEG over HTTP at {args.fps:g} frames/s, 1-3 faces",
                 "seconds": args.seconds, "detect_every": args.detect_every, "max_side": args.max_side, "runs": []}
    analyzer = Analyzer(max_side=args.max_side)
    frames = int(args.seconds * args.fps)
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = camera_jpegs(Path(tmp), args.seconds, args.fps, analyzer)
        sustained = 0
        for n in range(1, args.max_cameras + 1):
            with ExitStack() as stack, EventStore(Path(tmp) / f"n{n}.db") as store:
                servers = [stack.enter_context(MjpegServer(jpegs, fps=args.fps)) for _ in range(n)]
                store.create_event("bench")
                t0, c0 = time.perf_counter(), time.process_time()
                results = ingest_streams(store, "bench", cameras=[s.url for s in servers], analyzer=analyzer,
                                         progress=False, max_frames=frames, detect_every=args.detect_every)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            analysed = sum(r.frames for r in results)
            dropped = sum(r.frames_dropped for r in results)
            run = {"cameras": n, "frames_analysed": analysed, "frames_dropped": dropped,
                   "dropped_share": round(dropped / max(analysed + dropped, 1), 4), "wall_s": round(wall, 1),
                   "cpu_s_this_process": round(cpu, 1)}
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
            if run["dropped_share"] > args.max_drop:
                break
            sustained = n
    out["sustained_without_dropping"] = sustained
    out["note"] = f"largest N whose runs dropped at most {args.max_drop:.0%} of frames"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
