"""scripts/release_model.py: a card's training cost covers earlier cycles and teachers, each run once."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import load_script  # noqa: E402

from moodlens.train.config import TrainConfig  # noqa: E402


@pytest.fixture(scope="module")
def release():
    return load_script("release_model")


def _run(runs: Path, name: str, minutes: float, device: str = "cpu", **cfg) -> Path:
    (runs / name).mkdir(parents=True)
    path = runs / name / "final.pt"
    torch.save({"model": {"w.weight": torch.zeros(3, 2)}, "config": asdict(TrainConfig(**cfg)), "epochs": 5,
                "elapsed_s": minutes * 60, "device": device,
                "machine": "host x86_64 + NVIDIA H200" if device == "cuda" else "host x86_64"}, path)
    return path


def test_cost_counts_cycles_and_teachers_once(release, tmp_path):
    runs = tmp_path / "runs"
    big_a = _run(runs, "big-a", 3.0, device="cuda")
    big_b = _run(runs, "big-b", 4.0, device="cuda")
    # A run made on a lease names its teachers by the paths they had there: found beside it here.
    first = _run(runs, "first", 10.0, device="cuda", teachers=("/tmp/elsewhere/big-a/final.pt",))
    # An ONNX teacher's card lists its member runs; big-a is also first's teacher and is counted once.
    (tmp_path / "ens.onnx").write_bytes(b"not read")
    (tmp_path / "ens.json").write_text(json.dumps({"name": "ens-int8", "members": [
        {"run": str(big_a.parent)}, {"run": str(big_b.parent)}]}))
    _run(runs, "second", 20.0, init_from=str(first), teachers=(str(tmp_path / "ens.onnx"),))

    release.checkpoint.cache_clear()
    m = release.member(runs / "second")
    assert release.checkpoint.cache_info().misses == 4  # second, first, big-a, big-b: each read from disk once
    assert m["train_minutes_total"] == 3.0 + 4.0 + 10.0 + 20.0
    assert m["epochs_total"] == 10  # this cycle and the one it started from
    assert m["machines"] == sorted([release.machine_words({"device": "cpu"}),
                                    "one NVIDIA H200 GPU (several runs shared it)"])
    assert m["devices"] == ["cpu", "cuda"]
    assert m["teachers"] == [f"{tmp_path / 'ens.onnx'} (ens-int8, scored once on the unaugmented training faces)"]
    assert release.member(runs / "first")["teachers"] == [str(big_a)]


def test_a_cycle_started_from_an_exported_model_counts_that_models_cost(release, tmp_path):
    """``--init-from X.onnx`` (weights read back from a shipped graph): epochs and minutes of the runs behind X
    come from X's card, once, even when X is also a teacher."""
    (tmp_path / "prev.onnx").write_bytes(b"not read")
    (tmp_path / "prev.json").write_text(json.dumps({"name": "prev-int8", "members": [
        {"run": str(tmp_path / "gone"), "epochs_total": 135, "train_minutes_total": 142.8, "devices": ["cpu", "cuda"],
         "machines": ["one NVIDIA H200 GPU (several runs shared it)", "a CPU"]}]}))
    prev = str(tmp_path / "prev.onnx")
    _run(tmp_path / "runs", "cont", 60.0, init_from=prev, teachers=(prev,))
    release.checkpoint.cache_clear()
    m = release.member(tmp_path / "runs" / "cont")
    assert m["epochs_total"] == 5 + 135
    assert m["train_minutes_total"] == 60.0 + 142.8
    assert m["devices"] == ["cpu", "cuda"]
    assert "a CPU" in m["machines"] and "one NVIDIA H200 GPU (several runs shared it)" in m["machines"]
    assert m["start"] == "the exported prev-int8, weights read back from its graph"
    assert "a further cycle from" in release.recipe_line(m) and "(the exported prev-int8" in release.recipe_line(m)
