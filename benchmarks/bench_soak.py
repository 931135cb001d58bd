"""Soak: resident memory of ``moodlens event ingest --video`` over a long 640x480 video (default 36,000 frames,
20 minutes at 30 frames/s), sampled from /proc while it runs.

Prints resident memory (RSS) at the start (after warm-up: the first ``--warmup`` frames analysed), the middle
and the end of the ingest, the largest seen, the growth after warm-up, and the frames/s the ingest held.
Growth target: under 50 MB after warm-up.

    python benchmarks/bench_soak.py [--frames 36000] [--detect-every 3] [--max-side 320] [--detector auto]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_media import face_box_in_head, write_faces_video  # noqa: E402
from machine import machine_facts  # noqa: E402

from moodlens.events.store import EventStore  # noqa: E402
from moodlens.recognition.analyzer import Analyzer  # noqa: E402


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def moodlens_cmd() -> list[str]:
    script = Path(sys.executable).parent / "moodlens"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from moodlens.cli import app; app()"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=36_000)
    ap.add_argument("--warmup", type=int, default=1_000, help="frames analysed before the start sample")
    ap.add_argument("--detect-every", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--detector", default="auto", help="face detector (auto, yunet, centerface)")
    args = ap.parse_args()
    out: dict = {"machine": machine_facts(("numpy", "opencv-python-headless", "onnxruntime", "yuface", "av")),
                 "frames": args.frames, "detect_every": args.detect_every, "max_side": args.max_side,
                 "detector": args.detector}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "soak.mp4"
        t = time.perf_counter()
        write_faces_video(video, args.frames, (640, 480), face_box_in_head(Analyzer().detect))
        out["video_written_s"] = round(time.perf_counter() - t, 1)
        db = f"sqlite:///{Path(tmp) / 'soak.db'}"
        with EventStore(db) as store:
            store.create_event("soak")
        cmd = [*moodlens_cmd(), "event", "ingest", "soak", "--video", str(video), "--db", db, "--no-progress",
               "--detect-every", str(args.detect_every), "--max-side", str(args.max_side), "--detector", args.detector]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, int, float]] = []  # (seconds, frames committed, RSS MB)
        with EventStore(db, create=False) as store:
            while proc.poll() is None:
                time.sleep(0.25)
                rss = rss_mb(proc.pid)
                sources = store.sources("soak")
                if rss is not None and sources:
                    samples.append((time.perf_counter() - started, sources[0].frames_done, rss))
        stdout, stderr = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"ingest failed: {stderr}")
        with EventStore(db, create=False) as store:
            committed = store.sources("soak")[0].frames_done

    def at(frames: int) -> tuple[float, int, float]:
        return next((s for s in samples if s[1] >= frames), samples[-1])

    start, middle, end = at(args.warmup), at(args.frames // 2), samples[-1]
    out["ingest"] = stdout.strip()
    # The last sample is the last moment the ingest was alive to be measured: its final commit may come after.
    out["frames_committed"] = committed
    out["rss_mb"] = {"start_after_warmup": round(start[2], 1), "start_frame": start[1],
                     "middle": round(middle[2], 1), "middle_frame": middle[1],
                     "end": round(end[2], 1), "end_frame": end[1], "max": round(max(s[2] for s in samples), 1)}
    out["growth_after_warmup_mb"] = round(end[2] - start[2], 1)
    out["frames_per_s"] = round((end[1] - start[1]) / max(end[0] - start[0], 1e-9), 1)
    out["target"] = "growth under 50 MB after warm-up"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
