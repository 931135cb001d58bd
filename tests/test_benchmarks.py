"""The benchmark scripts run and report real, positive throughput for the shipped models."""

from __future__ import annotations

import json
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
    result = json.loads(out.read_text())
    expected = {"pytorch_eager"} | {f"ort:{name}" for name in shipped_models()}
    assert set(result["faces_per_second"]) == expected
    assert all(v > 0 for side in result["faces_per_second"].values() for v in side.values())
    assert result["machine"]["threads"] == 1


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
    out = run_bench("bench_soak.py", "--frames", "300", "--warmup", "60")
    result = json.loads(out)
    rss = result["rss_mb"]
    assert rss["start_after_warmup"] > 30 and rss["middle"] > 30 and rss["end"] > 30
    assert rss["start_frame"] < rss["middle_frame"] <= rss["end_frame"] == 300
    assert "300 frames analysed" in result["ingest"]


def test_bench_streams_counts_cameras_and_drops():
    out = run_bench("bench_streams.py", "--seconds", "2", "--max-cameras", "1")
    result = json.loads(out[out.index('{\n'):])
    [run] = result["runs"]
    assert run["cameras"] == 1 and run["frames_analysed"] + run["frames_dropped"] == 20
