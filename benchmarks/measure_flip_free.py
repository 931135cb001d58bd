"""Does video need flip averaging? Accuracy on FER2013 PublicTest (never PrivateTest) of three ways to use
mirror images, on single faces and on stand-ins for tracks.

A track is stood in for by K views of each PublicTest face, each shifted by up to 2 px and scaled by
0.95-1.05 (the jitter of successive detector boxes; the expression itself does not change, so real
tracks vary more). Per face and view the script scores:

* ``average``: the shipped graph (each view and its mirror image, averaged inside the graph);
* ``flip-free``: the model's flip-free graph on the view alone (half the work);
* ``alternate``: the flip-free graph, the mirror image on every other view (``flip="alternate"``,
  the same work as flip-free);

and prints accuracy of a single exact face, of one view, and of the probabilities averaged over the
first K views, with paired differences against ``average`` (faces where exactly one is right).

    python benchmarks/measure_flip_free.py --data ../shared/data/fer2013/fer2013.csv.gz [--model default]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from machine import machine_facts

from moodlens.dataset.readers import load_dataset
from moodlens.recognition.classifier import EmotionClassifier
from moodlens.spec import IMAGE_SIZE

TRACK_LENGTHS = (1, 2, 3, 5, 9)


def jittered_views(faces: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` copies of ``faces``, each face shifted by up to 2 px and scaled by 0.95-1.05 at random."""
    rng = np.random.default_rng(seed)
    centre = (IMAGE_SIZE - 1) / 2
    views = []
    for _ in range(k):
        dx, dy = rng.uniform(-2, 2, (2, len(faces)))
        scale = rng.uniform(0.95, 1.05, len(faces))
        out = np.empty_like(faces)
        for i, face in enumerate(faces):
            m = cv2.getRotationMatrix2D((centre, centre), 0, float(scale[i]))
            m[:, 2] += (dx[i], dy[i])
            out[i] = cv2.warpAffine(face, m, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        views.append(out)
    return views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="FER2013 csv(.gz), image folders or packed .npz")
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=0, help="first N PublicTest faces (0: all)")
    args = ap.parse_args()
    facts = machine_facts()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in facts.items()))
    part = load_dataset(args.data).split("PublicTest")
    faces, labels = (part.images[:args.n], part.labels[:args.n]) if args.n else (part.images, part.labels)
    average = EmotionClassifier(args.model, threads=2, flip="average")
    free = EmotionClassifier(args.model, threads=2, flip="alternate")
    if free.graph_path == average.graph_path:
        raise SystemExit(f"{args.model} has no flip-free graph (see moodlens.train.flip_free)")
    print(f"model {average.name}; flip-free graph {free.graph_path.name}; "
          f"PublicTest n={len(labels)}\n")
    views = jittered_views(faces, max(TRACK_LENGTHS))
    run = free.session.run

    def flip_free(x: np.ndarray) -> np.ndarray:  # the flip-free graph, never mirrored
        return run(None, {free.input_name: x[:, None, 2:-2, 2:-2].astype(np.float32)})[0]

    probs = {
        "average": [average.predict(v) for v in views],
        "flip-free": [flip_free(v) for v in views],
        "alternate": [flip_free(v[:, :, ::-1] if k % 2 else v) for k, v in enumerate(views)],
    }
    exact = {"average": average.predict(faces), "flip-free": flip_free(faces), "alternate": flip_free(faces)}
    right = {name: {k: np.mean(p[:k], 0).argmax(1) == labels for k in TRACK_LENGTHS} for name, p in probs.items()}
    print(f"{'mode':<11}{'exact face':>11}" + "".join(f"track of {k}".rjust(13) for k in TRACK_LENGTHS))
    for name in probs:
        cells = "".join(f"{right[name][k].mean():13.4f}" for k in TRACK_LENGTHS)
        print(f"{name:<11}{np.mean(exact[name].argmax(1) == labels):11.4f}{cells}")
    print("\npaired difference to 'average' on the same tracks (faces where exactly one is right):")
    for name in ("flip-free", "alternate"):
        base = right["average"]
        cells = "".join(f"{right[name][k].mean() - base[k].mean():+.4f} ({np.sum(right[name][k] != base[k])})".rjust(17)
                        for k in TRACK_LENGTHS)
        print(f"{name:<11}{cells}")
    se = np.sqrt(0.7 * 0.3 / len(labels))
    print(f"\nbinomial standard error of one accuracy near 0.70 with n={len(labels)}: {se:.4f}")


if __name__ == "__main__":
    main()
