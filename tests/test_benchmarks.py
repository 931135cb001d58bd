"""The benchmark scripts run and report real, positive throughput for the shipped models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_classifier_compares_every_shipped_model_with_pytorch(tmp_path):
    pytest.importorskip("torch")
    from moodlens.recognition.classifier import shipped_models

    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_classifier.py"), "--seconds", "0.3",
                           "--batches", "1", "8", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "machine:" in proc.stdout and "relative to the pytorch_eager baseline" in proc.stdout
    assert "relative to the same model with flip averaging" in proc.stdout
    result = json.loads(out.read_text())
    expected = {"pytorch_eager", "ort:default/alternate"} | {f"ort:{name}" for name in shipped_models()}
    assert set(result["faces_per_second"]) == expected
    assert all(v > 0 for side in result["faces_per_second"].values() for v in side.values())
    assert result["machine"]["threads"] == 1


def test_bench_report_runs_and_reports_its_steps(tmp_path):
    out = tmp_path / "bench_report.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_report.py"), "--observations", "3000",
                           "--days", "2", "--repeats", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "machine:" in proc.stdout and "target of 2 s" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result["times"]) == {"build_report", "render_html", "write_report"}
    assert all(t["best_wall_s"] > 0 for t in result["times"].values()) and result["bins"] <= 150
    assert result["bin"] == "30 minutes" and result["machine"]["usable_cores"] >= 1


@pytest.mark.slow
def test_bench_ray_compares_plain_and_ray_runs_and_the_store(tmp_path):
    pytest.importorskip("ray")
    from ray_nodes import QUIET_MEMORY_MONITOR

    from moodlens.events.pgtemp import postgres_bindir

    store = ["--store-writers", "2", "--store-seconds", "1"] if postgres_bindir() else []
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ray.py"), "--photos", "2", "--side", "480",
                           "--workers", "1", "2", *store, "--json", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **QUIET_MEMORY_MONITOR})
    assert proc.returncode == 0, proc.stderr
    assert "machine:" in proc.stdout
    result = json.loads(out.read_text())
    assert result["machine"]["ray"] and result["plain"]["photos"] == 3 and result["plain"]["photos_per_s"] > 0
    assert [run["workers"] for run in result["ray"]] == [1, 2]
    assert all(run["same_faces_as_plain"] and run["photos"] == 3 and run["photos_per_s"] > 0 for run in result["ray"])
    if store:
        assert result["store_capacity"][0]["writers"] == 2 and result["store_capacity"][0]["observations_per_s"] > 0


def test_bench_detector_prints_cost_recall_and_face_widths(tmp_path):
    out = tmp_path / "detector.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_detector.py"), "--frames", "3",
                           "--positions", "1", "--sizes", "640x480", "--setting", "pyramid, min_face 20",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "machine:" in proc.stdout and "load_average" in proc.stdout
    (row,) = json.loads(out.read_text())["results"]
    assert row["frame"] == "640x480" and row["scales"] == [1.0, 320 / 480]
    assert row["ms_wall"] > 0 and row["recall_bench"][1] > 0 and row["recall_videos"][1] > 0
    # The default pyramid finds the astronaut from 20 px at the latest up to a face as wide as the frame is high.
    low, high = row["face_widths"]["astronaut"]
    assert low <= 20 and high >= 400


def run_bench(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bench_pipeline_measures_the_engine_against_the_previous_loop():
    out = run_bench("bench_pipeline.py", "--frames", "24", "--sizes", "320x240")
    assert "machine:" in out and "load_average_1min" in out
    assert "previous release's loop, --every 1" in out and "stream engine, --detect-every 3, max_side 320" in out
    rows = [line for line in out.splitlines() if line.startswith("  ") and "frames/s" in line and "recall " in line]
    assert len(rows) == 6 and all(" 0.0 frames/s" not in r for r in rows)
    assert "x the previous loop's default" in out and "ms per frame to annotate and encode" in out


def test_bench_soak_prints_memory_at_start_middle_and_end():
    out = run_bench("bench_soak.py", "--frames", "900", "--warmup", "60")
    result = json.loads(out)
    rss = result["rss_mb"]
    assert rss["start_after_warmup"] > 30 and rss["middle"] > 30 and rss["end"] > 30
    assert rss["start_frame"] < rss["middle_frame"] <= rss["end_frame"] <= result["frames_committed"] == 900
    assert "900 frames analysed" in result["ingest"]


def test_bench_streams_counts_cameras_and_drops():
    out = run_bench("bench_streams.py", "--seconds", "2", "--max-cameras", "1")
    result = json.loads(out[out.index('{\n'):])
    [run] = result["runs"]
    assert run["cameras"] == 1 and run["frames_analysed"] + run["frames_dropped"] == 20


@pytest.mark.slow
@pytest.mark.postgres
def test_bench_ray_runs_live_cameras_in_one_process_and_through_ray(tmp_path):
    pytest.importorskip("ray")
    from ray_nodes import QUIET_MEMORY_MONITOR

    out = tmp_path / "cameras.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ray.py"), "--photos", "0", "--cameras", "2",
                           "--camera-workers", "1", "--camera-seconds", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **QUIET_MEMORY_MONITOR})
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(out.read_text())["cameras"]
    assert [(run["run"], run["cameras"]) for run in runs] == [("one process", 2), ("ray 1 worker(s)", 2)]
    for run in runs:  # every frame read from each camera was analysed or dropped
        assert [a + d for a, d in zip(run["frames_analysed"], run["frames_dropped"], strict=True)] == [20, 20]
        assert run["observations"] > 0  # the cameras show faces
