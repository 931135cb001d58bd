"""Run a plan of training jobs, phase by phase, with the jobs of a phase in parallel (made for a GPU machine
available for a short, fixed time, that cannot read the dataset's folder).

    moodlens data pack --data ../shared/data/fer2013/fer2013.csv.gz --out .cache/fer2013.npz.xz
    python experiments/gpu_sweep/sweep.py --plan experiments/gpu_sweep/plans/teachers-then-students.json \\
        --data .cache/fer2013.npz.xz --out OUT/runs --deadline 520 --pack OUT

A plan is JSON: ``{"phases": [{"name": "A", "budget_s": 230, "jobs": [{"name": "big-s0", "config": {...}}]}]}``.
``config`` holds :class:`~moodlens.train.config.TrainConfig` fields (``"time_budget": true`` in a job fits its
epochs, at most ``config.epochs``, into the phase's budget by timing first). ``"@NAME"`` refers to an earlier
job: in ``teachers`` its checkpoint, in ``epochs`` its epoch count. Each job is one process running
``moodlens.train.loop.train`` (log in ``OUT/NAME.log``); a phase ends when its jobs finish, or its budget plus a
grace period has passed (stragglers are stopped; their ``last.pt`` is kept and used).

``--pack DIR`` then writes ``results.tar.xz`` (logs, metrics, configs, curves) and every run's shipped weights
in float16 as ``weights.tar.NN`` parts of at most 15 MiB, to fit a transfer limit of 8 files and 64 MiB.
Unpack with ``python experiments/gpu_sweep/sweep.py --unpack DIR --out runs/gpu``: float32 ``final.pt`` per run.
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

GRACE_S = 30  # a phase's jobs may overrun their budget by this much before they are stopped
STARTUP_S = 15  # process start, data load and CUDA init, taken off each job's time budget
PART_BYTES = 15 * 2**20
WEIGHTS_LIMIT = 58 * 2**20


def run_checkpoint(run: Path) -> Path:
    """The checkpoint a run ships: ``final.pt``, or ``last.pt`` (its EMA weights) of a run stopped early."""
    return run / "final.pt" if (run / "final.pt").exists() else run / "last.pt"


def job_config(job: dict, out: Path) -> dict | None:
    """The job's config with references resolved, or None when a referenced run is missing."""
    cfg = dict(job.get("config", {}))
    if isinstance(cfg.get("epochs"), str):
        ref = out / cfg["epochs"][1:] / "config.json"
        if not ref.exists():
            return None
        cfg["epochs"] = json.loads(ref.read_text())["epochs"]
    if "teachers" in cfg:
        paths = [run_checkpoint(out / t[1:]) if t.startswith("@") else Path(t) for t in cfg["teachers"]]
        cfg["teachers"] = [str(p) for p in paths if p.exists()]
        if not cfg["teachers"]:
            return None
    return cfg


def worker(spec: dict) -> None:
    from dataclasses import asdict

    from moodlens.dataset.readers import load_dataset
    from moodlens.train.config import TrainConfig
    from moodlens.train.loop import train

    cfg = TrainConfig.from_dict({**asdict(TrainConfig()), **spec["config"]})
    print(json.dumps(spec), flush=True)
    train(cfg, load_dataset(spec["data"]), spec["out"], time_budget_s=spec.get("time_budget_s"))


def run_phase(phase: dict, data: Path, out: Path, seconds_left: float) -> None:
    budget = min(phase["budget_s"], seconds_left)
    print(f"== phase {phase['name']}: {len(phase['jobs'])} jobs, budget {budget:.0f} s", flush=True)
    procs = {}
    for job in phase["jobs"]:
        cfg = job_config(job, out)
        if cfg is None:
            print(f"skip {job['name']}: a run it refers to is missing", flush=True)
            continue
        spec = {"data": str(data), "out": str(out / job["name"]), "config": cfg,
                "time_budget_s": budget - STARTUP_S if job.get("time_budget") else None}
        log = (out / f"{job['name']}.log").open("w")
        procs[job["name"]] = (subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                                               stdout=log, stderr=subprocess.STDOUT), log)
    t0 = time.time()
    while any(p.poll() is None for p, _ in procs.values()):
        if time.time() - t0 > budget + GRACE_S:
            for name, (p, _) in procs.items():
                if p.poll() is None:
                    print(f"stopping {name}: past the phase budget", flush=True)
                    p.kill()
            break
        time.sleep(2)
    for name, (p, log) in procs.items():
        p.wait()
        log.close()
        print(f"{name}: exit {p.returncode} after {time.time() - t0:.0f} s", flush=True)


def pack(runs: Path, dest: Path, order: list[str]) -> None:
    import torch

    from moodlens.train.checkpoints import checkpoint_weights

    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest / "results.tar.xz", "w:xz") as tar:
        for path in sorted(runs.rglob("*")):
            if path.is_file() and path.suffix not in (".pt", ".tmp"):
                tar.add(path, arcname=str(path.relative_to(runs)))
    stage = Path(tempfile.mkdtemp())
    total = 0
    for name in order:
        src = run_checkpoint(runs / name)
        if not src.exists():
            continue
        ck = torch.load(src, map_location="cpu", weights_only=False)
        weights = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint_weights(ck).items()}
        meta = {k: ck.get(k) for k in ("config", "epochs", "elapsed_s", "machine", "device", "epoch")}
        torch.save({"model": weights, **meta, "complete": src.name == "final.pt", "transfer_dtype": "float16"},
                   stage / f"{name}.pt")
        size = (stage / f"{name}.pt").stat().st_size
        if total + size > WEIGHTS_LIMIT:
            print(f"not packed (size limit): {name}", flush=True)
            (stage / f"{name}.pt").unlink()
            continue
        total += size
    blob = stage / "weights.tar"
    with tarfile.open(blob, "w") as tar:
        for f in sorted(stage.glob("*.pt")):
            tar.add(f, arcname=f.name)
    data = blob.read_bytes()
    for i in range(0, len(data), PART_BYTES):
        (dest / f"weights.tar.{i // PART_BYTES:02d}").write_bytes(data[i:i + PART_BYTES])
    print(f"packed {len(list(stage.glob('*.pt')))} runs, {total / 2**20:.1f} MiB of weights", flush=True)


def unpack(src: Path, runs: Path) -> None:
    """Reassemble ``weights.tar.NN`` and ``results.tar.xz`` into run folders with float32 ``final.pt``."""
    import io

    import torch

    runs.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src / "results.tar.xz") as tar:
        tar.extractall(runs, filter="data")
    blob = b"".join(p.read_bytes() for p in sorted(src.glob("weights.tar.*")))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar.getmembers():
            ck = torch.load(io.BytesIO(tar.extractfile(member).read()), map_location="cpu", weights_only=False)
            ck["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
            name = member.name.removesuffix(".pt")
            (runs / name).mkdir(exist_ok=True)
            torch.save(ck, runs / name / ("final.pt" if ck["complete"] else "last-ema.pt"))
            print(f"{name}: epochs {ck['epochs'] or ck.get('epoch')}, complete {ck['complete']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", type=Path)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--deadline", type=float, default=1e9, help="Seconds until everything, packing included, ends.")
    ap.add_argument("--pack", type=Path, help="Folder for results.tar.xz and weights.tar.NN.")
    ap.add_argument("--unpack", type=Path, help="Folder holding what --pack wrote.")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.unpack:
        return unpack(args.unpack, args.out)
    t0 = time.time()
    plan = json.loads(args.plan.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data.name.endswith(".xz"):  # decompress once, not in every worker
        data = Path(tempfile.mkdtemp()) / data.name.removesuffix(".xz")
        with lzma.open(args.data) as src, data.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    reserve = 40 if args.pack else 0
    for phase in plan["phases"]:
        left = args.deadline - (time.time() - t0) - reserve - GRACE_S
        if left < 60:
            print(f"skip phase {phase['name']}: {left:.0f} s left", flush=True)
            continue
        run_phase(phase, data, args.out, left)
    if args.pack:
        pack(args.out, args.pack, [j["name"] for p in plan["phases"] for j in p["jobs"]])
    print(f"sweep done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
