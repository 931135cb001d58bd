"""Side-by-side runs of the class-balancing options (same recipe otherwise).

    python experiments/compare_balancing.py --data ../shared/data/fer2013/fer2013.csv.gz \
        --epochs 12 --widths 16,32,64,128 --out runs/balance-proxy

Trains one run per option on Training, scores each final (EMA) model on PublicTest with
flip averaging, and writes ``OUT/<option>/result.json`` (accuracy, macro-F1, per-class
recall). Options already finished are not retrained, so several copies of this script
may run side by side with different ``--options`` (``--threads 1`` each) and share OUT.
The table of every finished option is printed at the end. A smaller net and a shorter
schedule than the default recipe make this a proxy: it ranks options, it does not give
the default recipe's numbers.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score

from moodlens.dataset.readers import load_dataset
from moodlens.spec import EMOTIONS
from moodlens.train.loop import BALANCING, TrainConfig, build_model, predict_probs, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/balance"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--widths", default="16,32,64,128", help="channels per stage (default: a 4x cheaper proxy)")
    ap.add_argument("--dropout", type=float, default=0.4, help="head dropout of the proxy (what was measured)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--options", nargs="+", default=list(BALANCING), choices=BALANCING)
    args = ap.parse_args()

    data = load_dataset(args.data)
    val = data.split("PublicTest")
    for option in args.options:
        result_file = args.out / option / "result.json"
        if result_file.exists():
            continue
        cfg = replace(TrainConfig(), epochs=args.epochs, balance=option, threads=args.threads, dropout=args.dropout,
                      widths=tuple(int(w) for w in args.widths.split(",")))
        final = train(cfg, data, args.out / option, resume=(args.out / option / "last.pt").exists())
        net = build_model(cfg)
        net.load_state_dict(torch.load(final, weights_only=False)["model"])
        pred = predict_probs(net, val.images, "cpu").argmax(1)
        recall = recall_score(val.labels, pred, labels=range(len(EMOTIONS)), average=None, zero_division=0)
        result = {"balance": option, "accuracy": round(float(accuracy_score(val.labels, pred)), 4),
                  "macro_f1": round(float(f1_score(val.labels, pred, average="macro")), 4),
                  "recall": {e: round(float(r), 4) for e, r in zip(EMOTIONS, recall, strict=True)},
                  "epochs": args.epochs, "widths": list(cfg.widths),
                  "train_minutes": round(torch.load(final, weights_only=False)["elapsed_s"] / 60, 1)}
        result_file.write_text(json.dumps(result, indent=2))
        print(json.dumps(result), flush=True)

    print("\n| balance | PublicTest acc | macro-F1 | recall fear | recall disgust | train min |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for path in sorted(args.out.glob("*/result.json")):
        r = json.loads(path.read_text())
        print(f"| {r['balance']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['recall']['fear']:.3f} | "
              f"{r['recall']['disgust']:.3f} | {r['train_minutes']} |")


if __name__ == "__main__":
    main()
