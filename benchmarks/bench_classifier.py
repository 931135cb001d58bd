"""Classifier throughput in faces/second: ONNX Runtime (what ships) vs PyTorch eager, same run; for a model
with a flip-free graph also its video path (``flip="alternate"``) against its photo path (``"average"``).

    python benchmarks/bench_classifier.py                 # every shipped model vs PyTorch eager of the first
    python benchmarks/bench_classifier.py --model m.onnx --checkpoint runs/wide/final.pt

The baseline is PyTorch eager running the first ``--model``'s networks (float32): the same work
per face (centre crop, each network of an ensemble on the face and on its mirror image when the
card says flip averaging, softmax, mean). It is built from ``--checkpoint`` (repeat for an
ensemble) when given, otherwise freshly initialised from the ONNX model's recorded configs
(weights do not change the speed of a dense CNN). Each row states its ratio to that baseline, and
each ``/alternate`` row its ratio to the same model's flip-averaging row, measured in the same run.
Needs the ``train`` extra for the PyTorch side.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import machine_facts

from moodlens.card import ModelCard
from moodlens.recognition.classifier import EmotionClassifier, shipped_models
from moodlens.train.speed import faces_per_second


def torch_predictor(checkpoints: list[Path] | None, card: ModelCard | None, threads: int):
    """A PyTorch eager predictor for uint8 faces, and a sentence saying where its weights came from."""
    import torch

    from moodlens.train.augment import center_crop
    from moodlens.train.checkpoints import build_model, load_checkpoint
    from moodlens.train.config import TrainConfig
    from moodlens.train.model import ProbabilityModel

    torch.set_num_threads(threads)
    if checkpoints:
        loaded = [load_checkpoint(c) for c in checkpoints]
        nets = [net for net, _ in loaded]
        source = "trained weights from " + ", ".join(
            f"{c} (widths {tuple(ck['config']['widths'])})" for c, (_, ck) in zip(checkpoints, loaded, strict=True))
    else:
        cfgs = [net.config for net in card.training.nets] if card else [TrainConfig()]
        torch.manual_seed(0)
        nets = [build_model(cfg).eval() for cfg in cfgs]
        origin = "the ONNX model's card" if card else "the default TrainConfig"
        source = (f"{len(nets)} freshly initialised EmotionNet(s) from {origin} "
                  f"(widths {', '.join(str(c.widths) for c in cfgs)}; untrained weights)")
    model = ProbabilityModel(nets, flip_tta=card is None or card.tta != "none").eval()

    @torch.inference_mode()
    def predict(faces: np.ndarray) -> np.ndarray:
        return model(center_crop(torch.from_numpy(faces).float().unsqueeze(1))).numpy()

    return predict, source


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="ONNX model (name or path); repeat; default: every shipped one")
    ap.add_argument("--checkpoint", type=Path, action="append",
                    help="training checkpoint(s) for the PyTorch baseline (else fresh weights)")
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4), help="threads for both runtimes")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap.parse_args()


def runtimes(classifiers: list[EmotionClassifier], checkpoints: list[Path] | None,
             threads: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """What is timed, by name, each described on the terminal: the PyTorch eager baseline (when torch is
    installed), each model through ONNX Runtime and, for a model with a flip-free graph, its video path."""
    sides = {}
    try:
        sides["pytorch_eager"], source = torch_predictor(checkpoints, classifiers[0].card, threads)
        print(f"baseline pytorch_eager: {source}, float32")
    except ImportError:
        print("PyTorch baseline: skipped (torch not installed; pip install 'moodlens[train]')")
    for clf in classifiers:
        card, name = clf.card, f"ort:{clf.model_path.stem}"
        print(f"{name}: {clf.model_path} " + (
            f"({card.precision}, {card.ensemble_size} net(s), tta: {card.tta})" if card else "(no model card)"))
        sides[name] = clf.predict
        video = EmotionClassifier(clf.model_path, threads=threads, flip="alternate")
        if video.graph_path != clf.graph_path:
            print(f"{name}/alternate: {video.graph_path} (flip-free graph, the mirror image on every other call; "
                  "the video path)")
            sides[f"{name}/alternate"] = video.predict
    return sides


def measure(sides: dict[str, Callable[[np.ndarray], np.ndarray]], batches: list[int],
            seconds: float) -> dict[str, dict[str, float]]:
    """Faces/second of every side at every batch size, printed as a table row by row as they are measured."""
    results: dict[str, dict[str, float]] = {}
    base = "pytorch_eager" if "pytorch_eager" in sides else None
    print(f"\n{'runtime':<26}" + "".join(f"{f'batch {b}':>28}" for b in batches) + "   (faces/second)")
    for name, predict in sides.items():
        results[name] = {str(b): round(faces_per_second(predict, b, seconds), 1) for b in batches}
        print(f"{name:<26}" + "".join(cell(results, name, str(b), base).rjust(28) for b in batches))
    if base:
        print("(Nx) = faces/second relative to the pytorch_eager baseline, same process, same threads")
    if any(name.endswith("/alternate") for name in results):
        print("[Nx] = the video path (flip-free graph) relative to the same model with flip averaging, same run")
    return results


def cell(results: dict[str, dict[str, float]], name: str, batch: str, base: str | None) -> str:
    """``1,234.5 (3.21x) [1.98x]``: faces/second, its ratio to the baseline and, for a video path, to the same
    model's photo path."""
    fps = results[name][batch]
    text = f"{fps:,.1f}" + (f" ({fps / results[base][batch]:.2f}x)" if base else "")
    if name.endswith("/alternate"):
        text += f" [{fps / results[name.removesuffix('/alternate')][batch]:.2f}x]"
    return text


def main() -> None:
    args = arguments()
    classifiers = [EmotionClassifier(m, threads=args.threads) for m in (args.model or list(shipped_models()))]
    facts = {**machine_facts(), "threads": args.threads}
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    results = measure(runtimes(classifiers, args.checkpoint, args.threads), args.batches, args.seconds)
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "models": [str(c.model_path) for c in classifiers],
                                         "faces_per_second": results}, indent=2))


if __name__ == "__main__":
    main()
