"""How faithfully ``--init-from MODEL.onnx`` reads a shipped model back into PyTorch.

    python experiments/check_readback.py --model default --data ../shared/data/fer2013/fer2013.csv.gz

Prints PublicTest accuracy of the exported graph (ONNX Runtime) and of the net read back from it
(PyTorch, same flip averaging), and how often their top classes agree.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from moodlens.dataset.readers import load_dataset
from moodlens.recognition.classifier import EmotionClassifier
from moodlens.train.loop import initial_weights, predict_probs
from moodlens.train.model import EmotionNet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="shipped name or .onnx path (single net, with its card)")
    ap.add_argument("--data", required=True)
    args = ap.parse_args()

    data = load_dataset(args.data)
    val = data.split("PublicTest")
    clf = EmotionClassifier(args.model)
    cfg = replace(clf.card.training.nets[0].config, init_from=args.model)
    net = EmotionNet(widths=cfg.widths, convs_per_stage=cfg.convs_per_stage, dropout=cfg.dropout)
    net.load_state_dict(initial_weights(cfg, data.split("Training").images))
    graph, back = clf.predict(val.images), predict_probs(net, val.images, "cpu")
    print(json.dumps({"model": str(args.model), "n": len(val),
                      "graph_accuracy": round(float((graph.argmax(1) == val.labels).mean()), 4),
                      "read_back_accuracy": round(float((back.argmax(1) == val.labels).mean()), 4),
                      "top1_agreement": round(float((graph.argmax(1) == back.argmax(1)).mean()), 4),
                      "max_abs_diff": round(float(np.abs(graph - back).max()), 4)}, indent=2))


if __name__ == "__main__":
    main()
