"""Evaluate an ONNX emotion model on one split of a FER2013 dataset (no torch).

``evaluate(model, data, split, out)`` runs :class:`~moodlens.recognition.classifier.EmotionClassifier`
exactly as the runtime does (same preprocessing, same test-time augmentation baked
into the model) and writes into ``out``: ``report.json``, ``classification_report.txt``,
``confusion_matrix.png`` (counts and row-normalised), ``correct_examples.png`` and
``wrong_examples.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from moodlens.dataset.figures import save_confusion_matrix, save_face_grid, save_reliability_diagram
from moodlens.dataset.readers import FaceDataset, load_dataset
from moodlens.recognition.classifier import EmotionClassifier
from moodlens.spec import EMOTIONS

ECE_BINS = 15
_CLASS_IDS = list(range(len(EMOTIONS)))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    conf = probs.max(axis=1)
    hit = probs.argmax(axis=1) == labels
    # Bin i holds confidences in (i/n, (i+1)/n]; confidence is always > 1/7 > 0.
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities as softmax(log p / T); T > 1 softens, T < 1 sharpens, argmax unchanged."""
    z = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising negative log-likelihood on ``(probs, labels)``.

    Fit it on data the reported numbers are not measured on (e.g. PublicTest, then report
    on PrivateTest), or the calibration gain is flattered.
    """
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        return log_loss(labels, apply_temperature(probs, float(np.exp(log_t))), labels=_CLASS_IDS)

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def compute_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, macro-F1, confusion matrix, ECE and NLL."""
    pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=_CLASS_IDS,
                                                                     zero_division=0)
    cm = confusion_matrix(labels, pred, labels=_CLASS_IDS)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=_CLASS_IDS, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, pred, labels=_CLASS_IDS, average="weighted", zero_division=0)),
        "per_class": {name: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                             "support": int(support[k])} for k, name in enumerate(EMOTIONS)},
        "per_class_recall": {name: float(recall[k]) for k, name in enumerate(EMOTIONS)},
        "confusion_matrix": cm.tolist(),
        "ece": expected_calibration_error(probs, labels),
        "ece_bins": ECE_BINS,
        "nll": float(log_loss(labels, np.clip(probs, 1e-12, 1.0), labels=_CLASS_IDS)),
    }


def example_rows(dataset: FaceDataset, probs: np.ndarray, correct: bool, per_class: int,
                 seed: int = 0) -> list[tuple[str, np.ndarray, list[str]]]:
    """Random correctly (or wrongly) classified faces per true class, captioned with the prediction."""
    rng = np.random.default_rng(seed)
    pred = probs.argmax(axis=1)
    rows = []
    for k, name in enumerate(EMOTIONS):
        idx = np.flatnonzero((dataset.labels == k) & ((pred == k) if correct else (pred != k)))
        idx = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        captions = [f"{EMOTIONS[pred[i]]} {probs[i, pred[i]]:.2f}" for i in idx]
        rows.append((f"true: {name}", dataset.images[idx], captions))
    return rows


def evaluate(data: str | Path | FaceDataset, *, model: str | Path = "default", split: str = "PublicTest",
             out: str | Path | None = None, json_file: str | Path | None = None, skip_bad: bool = False,
             examples_per_class: int = 8, seed: int = 0) -> dict[str, Any]:
    """Score ``model`` on ``split`` of ``data``; write the report and figures into ``out``; return the report."""
    dataset = data if isinstance(data, FaceDataset) else load_dataset(data, skip_bad=skip_bad, progress=True)
    part = dataset.split(split)
    classifier = EmotionClassifier(model)

    t0 = time.perf_counter()
    probs = classifier.predict(part.images)
    seconds = time.perf_counter() - t0

    report: dict[str, Any] = {
        "model": str(classifier.model_path),
        "model_name": classifier.name,
        "model_sha256": classifier.sha256,
        "tta": classifier.card.tta if classifier.card else "unknown",
        "data": dataset.source,
        "split": str(part.splits[0]),
        "classes": list(EMOTIONS),
        **compute_metrics(part.labels, probs),
        "skipped_bad": {"count": len(dataset.skipped), "first": dataset.skipped[:20]},
        "inference_s": round(seconds, 3),
    }
    # What temperature scaling would do if fitted on this very split (optimistic: fitted and scored on the
    # same faces); the shipped model applies none, so this says whether fitting one on held-out data could pay.
    t = fit_temperature(probs, part.labels)
    scaled = apply_temperature(probs, t)
    report["temperature_fit"] = {
        "temperature": round(t, 4), "ece": expected_calibration_error(scaled, part.labels),
        "nll": float(log_loss(part.labels, np.clip(scaled, 1e-12, 1.0), labels=_CLASS_IDS)),
    }
    text = classification_report(part.labels, probs.argmax(axis=1), labels=_CLASS_IDS, target_names=list(EMOTIONS),
                                 digits=4, zero_division=0)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        name = f"{report['model_name']} on {report['split']} (n={report['n']:,})"
        save_confusion_matrix(np.array(report["confusion_matrix"]), out / "confusion_matrix.png",
                              f"{name}: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
        save_face_grid(example_rows(part, probs, True, examples_per_class, seed), out / "correct_examples.png",
                       f"Correctly classified: {name}; caption = predicted class and probability")
        save_face_grid(example_rows(part, probs, False, examples_per_class, seed), out / "wrong_examples.png",
                       f"Wrongly classified: {name}; row = true class, caption = predicted class and probability")
        save_reliability_diagram(probs, part.labels, out / "reliability.png",
                                 f"{name}: ECE ({ECE_BINS} bins) {report['ece']:.3f}", n_bins=ECE_BINS)
        (out / "classification_report.txt").write_text(text)
        (out / "report.json").write_text(json.dumps(report, indent=2))
    if json_file is not None:
        Path(json_file).parent.mkdir(parents=True, exist_ok=True)
        Path(json_file).write_text(json.dumps(report, indent=2))
    return report
