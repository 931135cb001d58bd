"""Look at a FER2013 dataset before training on it.

``explore(data, out)`` writes into ``out``:
``class_counts.md`` (table), ``class_counts.png`` (bar charts), ``sample_faces.png``
(random faces of each class) and ``summary.json`` (counts, shares, pixel statistics,
exact duplicates within and across splits, skipped bad rows).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from moodlens.dataset.figures import save_class_counts_chart, save_face_grid
from moodlens.dataset.readers import FaceDataset, describe, load_dataset
from moodlens.spec import EMOTIONS

#: Faces whose pixel standard deviation is below this are blank or nearly so (FER2013 has a few).
UNIFORM_STD = 2.0


def class_count_table(counts: dict[str, dict[str, int]]) -> str:
    """A Markdown table: one row per split, one column per class, plus the total."""
    lines = ["| split | " + " | ".join(EMOTIONS) + " | total |",
             "| --- | " + " | ".join("---:" for _ in EMOTIONS) + " | ---: |"]
    for split, row in counts.items():
        lines.append(f"| {split} | " + " | ".join(f"{row[n]:,}" for n in EMOTIONS) + f" | {sum(row.values()):,} |")
    return "\n".join(lines)


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(face.tobytes(), digest_size=16).digest() for face in images]


def duplicate_counts(dataset: FaceDataset) -> dict[str, Any]:
    """Exact pixel duplicates: repeats inside each split, faces shared between splits, and
    duplicate groups whose copies carry different labels.

    Faces shared between training and test splits inflate test scores, so they are worth knowing.
    """
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i, digest in enumerate(_digests(dataset.images)):
        groups[digest].append(i)
    within = dict.fromkeys(dataset.split_names(), 0)
    across: dict[str, int] = defaultdict(int)
    conflicting = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        splits = dataset.splits[members]
        for split in set(splits.tolist()):
            within[split] += int((splits == split).sum()) - 1
        names = sorted(set(splits.tolist()))
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                across[f"{a}&{b}"] += 1
        conflicting += len(set(dataset.labels[members].tolist())) > 1
    return {"within_split": within, "across_splits_unique_faces": dict(across),
            "groups_with_conflicting_labels": conflicting}


def sample_faces(dataset: FaceDataset, per_class: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Up to ``per_class`` random indices of each class (fixed seed, so reruns show the same faces)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, name in enumerate(EMOTIONS):
        idx = np.flatnonzero(dataset.labels == k)
        out[name] = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return out


def explore(data: str | Path | FaceDataset, out: str | Path, *, skip_bad: bool = False,
            samples_per_class: int = 10, seed: int = 0) -> dict[str, Any]:
    """Write the class table, charts, sample grid and ``summary.json`` for ``data``; return the summary."""
    dataset = data if isinstance(data, FaceDataset) else load_dataset(data, skip_bad=skip_bad, progress=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    counts = describe(dataset)
    table = class_count_table(counts)
    (out / "class_counts.md").write_text(table + "\n")
    save_class_counts_chart(counts, out / "class_counts.png", f"Faces per class and split: {Path(dataset.source).name}")

    # Sample from the training split when there is one: that is what the model learns from.
    pool = dataset.split("Training") if "Training" in counts else dataset
    picks = sample_faces(pool, samples_per_class, seed)
    rows = [(name, pool.images[idx], [f"#{i}" for i in idx]) for name, idx in picks.items()]
    which = "Training" if pool is not dataset else "all splits"
    save_face_grid(rows, out / "sample_faces.png", f"Random faces per class ({which}; # = row within split)")

    splits: dict[str, Any] = {}
    for split, row in counts.items():
        part = dataset.split(split)
        total = sum(row.values())
        present = [c for c in row.values() if c > 0]
        stds = part.images.reshape(len(part), -1).std(axis=1)
        splits[split] = {
            "n": total,
            "counts": row,
            "share": {n: round(c / total, 4) for n, c in row.items()},
            "imbalance_ratio": round(max(present) / min(present), 2),
            "pixel_mean": round(float(part.images.mean()), 2),
            "pixel_std": round(float(part.images.std()), 2),
            "uniform_faces": int((stds < UNIFORM_STD).sum()),
            # Share of clipped pixels: blown-out highlights are common in this data.
            "pixels_at_0": round(float((part.images == 0).mean()), 4),
            "pixels_at_255": round(float((part.images == 255).mean()), 4),
        }
    summary = {
        "source": dataset.source,
        "n": len(dataset),
        "classes": list(EMOTIONS),
        "splits": splits,
        "duplicates": duplicate_counts(dataset),
        "skipped_bad": {"count": len(dataset.skipped), "first": dataset.skipped[:20]},
        "files": {"table": "class_counts.md", "chart": "class_counts.png", "samples": "sample_faces.png"},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
