"""Short side-by-side runs of the class-balancing options (same recipe otherwise).

    python scripts/compare_balancing.py --data ../shared/data/fer2013/fer2013.csv.gz --epochs 5 --out runs/balance

Trains one run per option on Training, scores each final (EMA) model on PublicTest with flip
averaging, and prints accuracy and macro-F1. A short schedule only indicates; it does not settle.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from sklearn.metrics import accuracy_score, f1_score

from moodlens.data import load_dataset
from moodlens.train.loop import BALANCING, TrainConfig, build_model, predict_probs, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/balance"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--options", nargs="+", default=list(BALANCING), choices=BALANCING)
    args = ap.parse_args()

    data = load_dataset(args.data)
    val = data.split("PublicTest")
    results = {}
    for option in args.options:
        cfg = replace(TrainConfig(), epochs=args.epochs, balance=option)
        final = train(cfg, data, args.out / option, resume=True)
        net = build_model(cfg)
        net.load_state_dict(torch.load(final, weights_only=False)["model"])
        pred = predict_probs(net, val.images, "cpu").argmax(1)
        results[option] = {"accuracy": round(float(accuracy_score(val.labels, pred)), 4),
                           "macro_f1": round(float(f1_score(val.labels, pred, average="macro")), 4),
                           "epochs": args.epochs}
        print(option, results[option], flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
