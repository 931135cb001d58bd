"""PNG figures for dataset exploration and model evaluation (matplotlib, no GUI).

Figures are built on ``matplotlib.figure.Figure`` directly, not pyplot, so they
need no display and leave no global state behind in long-running processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from moodlens.spec import EMOTION_COLORS_BGR, EMOTIONS


def _rgb(name: str) -> tuple[float, float, float]:
    b, g, r = EMOTION_COLORS_BGR[name]
    return r / 255, g / 255, b / 255


def save_face_grid(rows: Sequence[tuple[str, np.ndarray, Sequence[str]]], path: str | Path, title: str) -> Path:
    """One row per entry ``(row label, faces (k, 48, 48) uint8, one caption per face)``.

    Rows may hold different numbers of faces; empty rows say "none".
    """
    ncols = max([len(faces) for _, faces, _ in rows] + [1])
    fig = Figure(figsize=(1.05 * ncols + 1.3, 1.25 * len(rows) + 0.6))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (label, faces, captions) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(faces):
                ax.imshow(faces[c], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_title(captions[c], fontsize=7, pad=2)
            elif c == 0:
                ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=8, color="0.4")
        axes[r, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, path)


def save_class_counts_chart(counts: Mapping[str, Mapping[str, int]], path: str | Path, title: str) -> Path:
    """One bar chart per split: number of faces of each class, count written on each bar."""
    splits = list(counts)
    fig = Figure(figsize=(4.2 * max(len(splits), 1), 3.8))
    axes = fig.subplots(1, max(len(splits), 1), squeeze=False)[0]
    for ax, split in zip(axes, splits, strict=False):
        values = [counts[split].get(name, 0) for name in EMOTIONS]
        bars = ax.bar(EMOTIONS, values, color=[_rgb(n) for n in EMOTIONS])
        ax.bar_label(bars, fontsize=7)
        ax.set_title(f"{split} (n={sum(values):,})", fontsize=10)
        ax.set_ylabel("faces")
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        ax.margins(y=0.12)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def save_confusion_matrix(cm: np.ndarray, path: str | Path, title: str) -> Path:
    """Counts (left) and row-normalised recall per true class (right), both annotated."""
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(12, 5.2))
    axes = fig.subplots(1, 2)
    for ax, values, kind in ((axes[0], cm, "counts"), (axes[1], norm, "row-normalised (recall)")):
        # Recall on a fixed 0..1 scale, so figures of different models compare at a glance.
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=None if kind == "counts" else 1.0)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        high = (values.max() if kind == "counts" else 1.0) / 2
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                text = f"{values[i, j]:d}" if kind == "counts" else f"{values[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > high else "black")
        ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(kind, fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def save_reliability_diagram(probs: np.ndarray, labels: np.ndarray, path: str | Path, title: str,
                             n_bins: int = 15) -> Path:
    """Top-label reliability: accuracy per confidence bin against the diagonal, with bin sizes below."""
    from sklearn.calibration import calibration_curve

    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == labels).astype(int)
    acc, mean_conf = calibration_curve(hit, conf, n_bins=n_bins, strategy="uniform")
    fig = Figure(figsize=(5.2, 6.0))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfectly calibrated")
    top.plot(mean_conf, acc, marker="o", color="tab:blue", label="model")
    top.fill_between(mean_conf, mean_conf, acc, color="tab:red", alpha=0.15, label="gap")
    top.set_ylabel("accuracy in bin")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title, fontsize=9)
    bottom.hist(conf, bins=n_bins, range=(0, 1), color="tab:blue", alpha=0.7)
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("faces")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
