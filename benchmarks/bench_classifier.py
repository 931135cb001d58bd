"""Classifier throughput in faces/second: ONNX Runtime (what ships) vs PyTorch eager, same network, same run.

    python benchmarks/bench_classifier.py                       # shipped ONNX vs a fresh net of its config
    python benchmarks/bench_classifier.py --checkpoint runs/default/final.pt --model m.onnx

Both sides do the same work per face: centre crop, the network on the face and on its mirror image
(when the model's card says it was exported with flip averaging), softmax. The PyTorch side is built
from ``--checkpoint`` when given, otherwise freshly initialised from the ONNX model's recorded config
(weights do not change the speed of a dense CNN). Needs the ``train`` extra for the PyTorch side.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from moodlens.classifier import EmotionClassifier
from moodlens.machine import machine_facts
from moodlens.spec import IMAGE_SIZE


def faces_per_second(predict, batch: int, seconds: float) -> float:
    """Best of three timed windows of ``seconds / 3`` each, after a warm-up (less noise on a shared machine)."""
    faces = np.random.default_rng(0).integers(0, 256, (batch, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for _ in range(3):
        predict(faces)
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds / 3:
            predict(faces)
            n += batch
        best = max(best, n / elapsed)
    return best


def torch_predictor(checkpoint: Path | None, card: dict[str, Any], threads: int):
    """A PyTorch eager predictor for uint8 faces, and a sentence saying where its weights came from."""
    import torch

    from moodlens.train.augment import center_crop
    from moodlens.train.config import TrainConfig
    from moodlens.train.export import load_checkpoint
    from moodlens.train.loop import build_model
    from moodlens.train.model import ProbabilityModel

    torch.set_num_threads(threads)
    if checkpoint is not None:
        net, ck = load_checkpoint(checkpoint)
        source = f"trained weights from {checkpoint} (widths {tuple(ck['config']['widths'])})"
    else:
        cfg = TrainConfig.from_dict(card["config"]) if "config" in card else TrainConfig()
        torch.manual_seed(0)
        net = build_model(cfg).eval()
        origin = "the ONNX model's recorded config" if "config" in card else "the default TrainConfig"
        source = f"freshly initialised EmotionNet from {origin} (widths {cfg.widths}; untrained weights)"
    model = ProbabilityModel(net, flip_tta=card.get("tta", "horizontal flip average") != "none").eval()

    @torch.inference_mode()
    def predict(faces: np.ndarray) -> np.ndarray:
        return model(center_crop(torch.from_numpy(faces).float().unsqueeze(1))).numpy()

    return predict, source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="ONNX model for the ONNX Runtime side (default: shipped)")
    ap.add_argument("--checkpoint", type=Path, help="training checkpoint for the PyTorch side (else fresh weights)")
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4), help="threads for both runtimes")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    classifier = EmotionClassifier(args.model, threads=args.threads)
    facts = {**machine_facts(), "threads": args.threads}
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print(f"ONNX Runtime side: {classifier.model_path} (tta: {classifier.card.get('tta', 'unknown')})")
    sides = {"onnxruntime": classifier.predict}
    try:
        sides["pytorch_eager"], source = torch_predictor(args.checkpoint, classifier.card, args.threads)
        print(f"PyTorch side: {source}")
    except ImportError:
        print("PyTorch side: skipped (torch not installed; pip install 'moodlens[train]')")

    results: dict[str, dict[str, float]] = {}
    print(f"\n{'runtime':<16}" + "".join(f"{f'batch {b}':>14}" for b in args.batches) + "   (faces/second)")
    for name, predict in sides.items():
        results[name] = {str(b): round(faces_per_second(predict, b, args.seconds), 1) for b in args.batches}
        print(f"{name:<16}" + "".join(f"{results[name][str(b)]:>14,.1f}" for b in args.batches))
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "model": str(classifier.model_path),
                                         "faces_per_second": results}, indent=2))


if __name__ == "__main__":
    main()
