"""What the report's privacy noise costs in accuracy, and how well it stops the padding attack.

Real per-person probabilities: the shipped model's predictions for FER2013 PublicTest faces. Groups of
5, 20 and 100 of them are drawn at random; each group's expression mix is released as the report does
(``moodlens.events.privacy.noisy_shares``, fresh noise every time) and compared with the exact mix.

The attack: someone adds 4 faces whose scores they know to a group with 1 other person and computes
``5 x share - 4 x own``. Printed: how often every recovered probability is more than 0.05 off, how often
all 7 are within 0.05, per class; and how often the attacker tells which of two people (one mostly
happy, one mostly sad) was the fifth, against the ``e**eps / (1 + e**eps)`` bound differential privacy sets.

    python benchmarks/privacy_cost.py --data ../shared/data/fer2013/fer2013.csv.gz
    python benchmarks/privacy_cost.py --data DATA --epsilon 0.5 --trials 500
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from moodlens.dataset.readers import load_dataset
from moodlens.events.privacy import noisy_shares
from moodlens.recognition.classifier import EmotionClassifier
from moodlens.settings import PRIVACY_EPSILON
from moodlens.spec import EMOTIONS, VALENCE

_VALENCE = np.array([VALENCE[e] for e in EMOTIONS])


def person_probabilities(data: str, split: str, model: str) -> np.ndarray:
    faces = load_dataset(data).split(split).images
    return EmotionClassifier(model).predict(faces).astype(np.float64)


def group_cost(probs: np.ndarray, size: int, trials: int, epsilon: float, rng: np.random.Generator) -> dict:
    """Error of the released mix against the exact one, over ``trials`` random groups of ``size`` people."""
    share_err, max_err, valence_err, same_top = [], [], [], []
    for _ in range(trials):
        rows = probs[rng.choice(len(probs), size, replace=False)]
        exact, released = rows.mean(0), noisy_shares(rows, epsilon)
        share_err.append(np.abs(released - exact).mean())
        max_err.append(np.abs(released - exact).max())
        valence_err.append(abs(100 * (released - exact) @ _VALENCE))
        same_top.append(released.argmax() == exact.argmax())
    return {"people": size, "share_error_pp_mean": 100 * float(np.mean(share_err)),
            "largest_share_error_pp_p95": 100 * float(np.percentile(max_err, 95)),
            "valence_error_mean": float(np.mean(valence_err)),
            "valence_error_p95": float(np.percentile(valence_err, 95)),
            "top_expression_kept": float(np.mean(same_top))}


def padding_attack(probs: np.ndarray, trials: int, epsilon: float, rng: np.random.Generator) -> dict:
    """1 person + 4 known faces; the attacker recovers ``5 x share - 4 x own``."""
    off_all, within_all, within = 0, 0, np.zeros(len(EMOTIONS))
    for _ in range(trials):
        victim, own = probs[rng.choice(len(probs), 2, replace=False)]
        recovered = 5 * noisy_shares(np.vstack([victim, *[own] * 4]), epsilon) - 4 * own
        close = np.abs(recovered - victim) <= 0.05
        off_all += not close.any()
        within_all += close.all()
        within += close
    # Telling two people apart: the most happy and the most sad face of the data, padded by the same 4 faces.
    happy, sad = probs[probs[:, EMOTIONS.index("happy")].argmax()], probs[probs[:, EMOTIONS.index("sad")].argmax()]
    own = probs[rng.integers(len(probs))]
    correct = 0
    for truth, person in ((0, happy), (1, sad)):
        for _ in range(trials):
            recovered = 5 * noisy_shares(np.vstack([person, *[own] * 4]), epsilon) - 4 * own
            guess = int(np.abs(recovered - sad).sum() < np.abs(recovered - happy).sum())
            correct += guess == truth
    return {"every_class_off_by_more_than_0.05": off_all / trials, "all_7_within_0.05": within_all / trials,
            "per_class_within_0.05": dict(zip(EMOTIONS, (within / trials).round(4).tolist(), strict=True)),
            "tells_happy_from_sad": correct / (2 * trials),
            "dp_bound_on_telling_apart": math.exp(epsilon) / (1 + math.exp(epsilon))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="FER2013 CSV (.csv/.csv.gz) or image-folder root")
    parser.add_argument("--split", default="PublicTest")
    parser.add_argument("--model", default="default")
    parser.add_argument("--epsilon", type=float, default=PRIVACY_EPSILON)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the group sampling (the noise is never seeded)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    probs = person_probabilities(args.data, args.split, args.model)
    rng = np.random.default_rng(args.seed)
    groups = [group_cost(probs, n, args.trials, args.epsilon, rng) for n in args.sizes if n <= len(probs)]
    attack = padding_attack(probs, args.trials, args.epsilon, rng)
    print(f"privacy noise, epsilon = {args.epsilon:g} per released group; {len(probs)} {args.split} faces "
          f"classified by the '{args.model}' model; {args.trials} random groups per size")
    print(f"\n{'people':>6} {'share err (pp, mean)':>21} {'largest share err (pp, p95)':>28} "
          f"{'valence err (mean / p95)':>25} {'top expression kept':>20}")
    for g in groups:
        print(f"{g['people']:>6} {g['share_error_pp_mean']:>21.1f} {g['largest_share_error_pp_p95']:>28.1f} "
              f"{g['valence_error_mean']:>12.1f} / {g['valence_error_p95']:<10.1f} {g['top_expression_kept']:>20.0%}")
    print(f"\npadding attack (1 person + 4 known faces, {args.trials} trials):")
    print(f"  every recovered probability off by more than 0.05: {attack['every_class_off_by_more_than_0.05']:.1%}")
    print(f"  all 7 recovered within 0.05:                       {attack['all_7_within_0.05']:.2%}")
    print("  per class within 0.05: " + ", ".join(f"{e} {v:.1%}" for e, v in attack["per_class_within_0.05"].items()))
    print(f"  tells the happiest from the saddest person:        {attack['tells_happy_from_sad']:.1%} "
          f"(differential privacy bound {attack['dp_bound_on_telling_apart']:.1%}; a coin flip is 50%)")
    if args.json:
        args.json.write_text(json.dumps({"epsilon": args.epsilon, "faces": len(probs), "trials": args.trials,
                                         "groups": groups, "attack": attack}, indent=2))


if __name__ == "__main__":
    main()
