"""Ship a finished training run as the default model, with its model card.

    python scripts/release_model.py --run {t.get('run', 'RUN_DIR')} --data ../shared/data/fer2013/fer2013.csv.gz \
        --command "moodlens train --data ../shared/data/fer2013/fer2013.csv.gz --out runs/default"

Exports ``RUN/final.pt`` to ``src/moodlens/models/default.onnx`` (parity-checked on real
PublicTest faces), evaluates it on PublicTest with the runtime classifier, measures
ONNX Runtime throughput, and writes ``default.json`` (machine-readable card, read by
the web app and reports) and ``MODEL_CARD.md``. Earlier cards' numbers are kept in
the history table. Never touches PrivateTest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import torch

from moodlens.classifier import EmotionClassifier
from moodlens.data import load_dataset
from moodlens.evaluate import evaluate
from moodlens.machine import cpu_model as cpu_name
from moodlens.spec import EMOTIONS
from moodlens.train.export import export_onnx

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "moodlens" / "models"


def throughput(model: Path, batch: int, seconds: float = 3.0) -> float:
    clf = EmotionClassifier(model)
    faces = np.random.default_rng(0).integers(0, 256, (batch, 48, 48), dtype=np.uint8)
    clf.predict(faces)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict(faces)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--command", required=True, help="the exact command that trained the run")
    ap.add_argument("--name", default="moodlens-vgg32")
    ap.add_argument("--notes", default="")
    args = ap.parse_args()

    data = load_dataset(args.data)
    val = data.split("PublicTest")
    ck = torch.load(args.run / "final.pt", map_location="cpu", weights_only=False)
    old = json.loads((MODELS / "default.json").read_text()) if (MODELS / "default.json").exists() else {}
    history = old.get("history", []) if "metrics" in old else []

    onnx_path = MODELS / "default.onnx"
    parity = export_onnx(args.run / "final.pt", onnx_path, parity_faces=val.images[:256])
    report = evaluate(data, model=onnx_path, split="PublicTest", out=ROOT / "docs" / "model" / "publictest")
    fps1, fps64 = throughput(onnx_path, 1), throughput(onnx_path, 64)
    params = sum(v.numel() for k, v in ck["model"].items() if k.endswith(("weight", "bias")))

    today = dt.date.today().isoformat()
    entry = {"date": today, "name": args.name, "accuracy": round(report["accuracy"], 4),
             "macro_f1": round(report["macro_f1"], 4), "epochs": ck["epochs"],
             "train_minutes": round(ck["elapsed_s"] / 60, 1), "device": ck.get("device", "cpu")}
    history = [h for h in history if h.get("date") != today or h.get("name") != args.name] + [entry]
    card = json.loads((MODELS / "default.json").read_text())  # written by export_onnx
    card.update({
        "name": args.name, "version": today, "classes": list(EMOTIONS), "params": int(params),
        "metrics": {"publictest": {k: report[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1", "ece", "nll")}
                    | {"per_class": report["per_class"]}},
        "caveats": "Fear and disgust are the least reliable classes (see per-class F1). Apparent facial "
                   "expression on 48x48 grayscale crops, not inner emotion.",
        "training": {"command": args.command, "run": str(args.run), "data": "FER2013 Training split (28,709 faces)",
                     "selection": "PublicTest (3,589 faces); PrivateTest never used",
                     "epochs": ck["epochs"], "wall_time_min": round(ck["elapsed_s"] / 60, 1),
                     "device": ck.get("device", "cpu"), "torch_threads": ck.get("torch_threads"),
                     "machine": cpu_name()},
        "speed": {"onnxruntime_faces_per_s_batch1": round(fps1), "onnxruntime_faces_per_s_batch64": round(fps64),
                  "machine": f"{cpu_name()}, {torch.get_num_threads()} threads"},
        "parity": parity, "history": history, "notes": args.notes,
    })
    (MODELS / "default.json").write_text(json.dumps(card, indent=2))
    (ROOT / "MODEL_CARD.md").write_text(render_card(card))
    print(json.dumps({k: card[k] for k in ("name", "version", "metrics", "speed")}, indent=2))


def render_card(c: dict) -> str:
    m = c["metrics"]["publictest"]
    t = c["training"]
    rows = "\n".join(f"| {e} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                     for e, v in m["per_class"].items())
    hist = "\n".join(f"| {h['date']} | {h['name']} | {h['accuracy']:.4f} | {h['macro_f1']:.4f} | {h['epochs']} | "
                     f"{h['train_minutes']} | {h['device']} |" for h in c["history"])
    cfg = c["config"]
    stage = (f"This is a second, shorter cycle that starts from the weights of `{cfg['init_from']}`; "
             f"the values above are this cycle's. {c['notes']}\n\n" if cfg.get("init_from") else "")
    return f"""# Model card: {c['name']} ({c['version']})

The default expression classifier that ships in `src/moodlens/models/default.onnx`
({Path(MODELS / 'default.onnx').stat().st_size / 1e6:.1f} MB, {c['params']:,} parameters).
Machine-readable twin: `default.json`. Generated by `scripts/release_model.py`.

## What it does
Input: a 48x48 grayscale face crop (the runtime cuts it from a detector box; see
`moodlens.preprocess`), centre-cropped to 44x44, raw pixels 0..255 (normalisation is inside
the graph). Output: probabilities for {', '.join(EMOTIONS)}.
Test-time augmentation: {c['tta']} — inside the exported graph, so the runtime does exactly
what was measured below.

It recognises **apparent facial expressions** of posed and spontaneous web images, not inner
emotion. See the README's "Responsible use".

## Data
FER2013 (Goodfellow et al., 2013), from `../shared/data/fer2013/fer2013.csv.gz`:
trained on **Training** (28,709 faces) only; settings chosen on **PublicTest** (3,589 faces).
The PrivateTest split was never available to us and nothing was tuned on it. Class balancing
({cfg['balance']}) uses training-split counts only; augmentation is applied to training batches only.

## Recipe
VGG-style CNN, widths {cfg['widths']}, {cfg['convs_per_stage']} conv+BatchNorm+ReLU per stage, max-pool,
global average pool, dropout {cfg['dropout']}, a 256-unit hidden layer, softmax output.
SGD (Nesterov, momentum {cfg['momentum']}, weight decay {cfg['weight_decay']}), one-cycle cosine schedule
peaking at lr {cfg['lr']} ({cfg['warmup_frac']:.0%} warm-up), batch {cfg['batch_size']}, {cfg['epochs']} epochs,
label smoothing {cfg['label_smoothing']}, exponential moving average of weights (decay {cfg['ema_decay']}; the
EMA weights ship). Augmentation per batch: random shift ±{cfg['augment']['max_shift_px']} px, rotation
±{cfg['augment']['max_rotation_deg']}°, scale {cfg['augment']['scale_range']}, horizontal flip, brightness and
contrast ±{cfg['augment']['brightness']}, random erasing (p={cfg['augment']['erase_prob']}).

{stage}Reproduce (training wall time {t['wall_time_min']} min on {t['device']}, {t['machine']},
{t['torch_threads']} threads, while other work shared the 2 cores):

    {t['command']}
    python scripts/release_model.py --run {t.get('run', 'RUN_DIR')} \\
        --data ../shared/data/fer2013/fer2013.csv.gz --command "..."
    moodlens evaluate --model default --data ../shared/data/fer2013/fer2013.csv.gz --split PublicTest --out out/eval

## PublicTest metrics (n = {m['n']:,})
| metric | value |
| --- | --- |
| accuracy | **{m['accuracy']:.4f}** |
| macro-F1 | **{m['macro_f1']:.4f}** |
| weighted F1 | {m['weighted_f1']:.4f} |
| expected calibration error (15 bins) | {m['ece']:.4f} |
| negative log-likelihood | {m['nll']:.4f} |

| class | precision | recall | F1 | support |
| --- | --- | --- | --- | --- |
{rows}

Confusion matrix and example grids: `docs/model/publictest/`.
Fear and disgust are the weak classes, as everywhere on FER2013; treat them as unreliable.

## Speed
ONNX Runtime, {c['speed']['machine']}: {c['speed']['onnxruntime_faces_per_s_batch1']:,} faces/s at batch 1,
{c['speed']['onnxruntime_faces_per_s_batch64']:,} faces/s at batch 64 (flip TTA included).
Full comparison with PyTorch eager: `python benchmarks/bench_classifier.py`.

ONNX export parity with PyTorch on 256 real PublicTest faces: max |Δp| = {c['parity']['parity_max_abs_diff']:.1e}
(tolerance {c['parity']['tolerance']}).

## History
| date | name | PublicTest acc | macro-F1 | epochs | train min | device |
| --- | --- | --- | --- | --- | --- | --- |
{hist}

## Limits
- FER2013 faces are low-resolution, mostly frontal, web-sourced, and unevenly represent age,
  ethnicity and gender; accuracy on other populations, angles and lighting is unmeasured.
- Labels are single crowd labels with known noise (human agreement is about 65 %).
- FER2013 itself has 270 faces that appear pixel-identical in both Training and PublicTest
  (`moodlens data explore` counts them), which flatters PublicTest figures slightly.
- {c['caveats']}
"""


if __name__ == "__main__":
    main()
