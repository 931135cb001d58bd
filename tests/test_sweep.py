"""scripts/sweep.py: plan references resolve, and packed runs come back intact (float16 in transit)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import load_script  # noqa: E402

from moodlens.train.config import TrainConfig  # noqa: E402
from moodlens.train.loop import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep():
    return load_script("sweep")


def _fake_run(runs: Path, name: str, epochs: int, complete: bool = True) -> dict:
    cfg = TrainConfig(widths=(8, 16), epochs=epochs)
    torch.manual_seed(epochs)
    weights = build_model(cfg).state_dict()
    (runs / name).mkdir(parents=True)
    (runs / name / "config.json").write_text(json.dumps(asdict(cfg)))
    (runs / name / "metrics.csv").write_text("epoch,val_acc\n1,0.5\n")
    if complete:
        torch.save({"model": weights, "config": asdict(cfg), "epochs": epochs, "elapsed_s": 12.5, "machine": "m",
                    "device": "cpu"}, runs / name / "final.pt")
    else:  # a run stopped mid-way: only last.pt, whose EMA copy is what ships
        ema = {f"module.{k}": v for k, v in weights.items()} | {"n_averaged": torch.tensor(3)}
        torch.save({"ema": ema, "config": asdict(cfg), "epoch": 1, "elapsed_s": 3.0}, runs / name / "last.pt")
    return weights


def test_plan_references_resolve_to_earlier_runs(sweep, tmp_path):
    _fake_run(tmp_path, "teacher", epochs=7)
    job = {"name": "student", "config": {"epochs": "@teacher", "teachers": ["@teacher", "@missing"]}}
    cfg = sweep.job_config(job, tmp_path)
    assert cfg["epochs"] == 7 and cfg["teachers"] == [str(tmp_path / "teacher" / "final.pt")]
    assert sweep.job_config({"name": "x", "config": {"teachers": ["@missing"]}}, tmp_path) is None
    assert sweep.job_config({"name": "x", "config": {"epochs": "@missing"}}, tmp_path) is None


def test_pack_then_unpack_gives_back_every_run(sweep, tmp_path):
    runs = tmp_path / "runs"
    done = _fake_run(runs, "done", epochs=2)
    stopped = _fake_run(runs, "stopped", epochs=3, complete=False)
    sweep.pack(runs, tmp_path / "out", ["done", "stopped", "never-ran"])
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files[0] == "results.tar.xz" and all(f.startswith("weights.tar.") for f in files[1:])
    sweep.unpack(tmp_path / "out", tmp_path / "back")
    assert (tmp_path / "back" / "done" / "metrics.csv").read_text() == "epoch,val_acc\n1,0.5\n"
    for name, ref, file in (("done", done, "final.pt"), ("stopped", stopped, "last-ema.pt")):
        ck = torch.load(tmp_path / "back" / name / file, weights_only=False)
        assert ck["complete"] == (name == "done") and ck["transfer_dtype"] == "float16"
        for key, value in ref.items():
            assert ck["model"][key].dtype == value.dtype, key
            torch.testing.assert_close(ck["model"][key], value, rtol=1e-3, atol=1e-3)
    assert TrainConfig.from_dict(torch.load(tmp_path / "back" / "done" / "final.pt", weights_only=False)["config"]) \
        == TrainConfig(widths=(8, 16), epochs=2)


@pytest.mark.parametrize("plan", sorted((ROOT / "scripts" / "plans").glob("*.json")), ids=lambda p: p.name)
def test_committed_plans_name_only_recipe_fields(plan):
    """A typo in a plan would otherwise surface only on a lent GPU, where minutes are scarce."""
    fields = set(asdict(TrainConfig()))
    phases = json.loads(plan.read_text())["phases"]
    names = [job["name"] for phase in phases for job in phase["jobs"]]
    assert len(names) == len(set(names))
    for phase in phases:
        assert phase["budget_s"] > 0
        for job in phase["jobs"]:
            assert set(job["config"]) <= fields, set(job["config"]) - fields
            TrainConfig.from_dict({**asdict(TrainConfig()), **{k: v for k, v in job["config"].items()
                                                               if not str(v).startswith("@")}})
