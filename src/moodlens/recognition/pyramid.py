"""Detection scales chosen by face size, and merging the faces found at several scales.

A detector finds faces reliably only within a range of sizes in its input (``face_range``, measured
per detector, docs/recognition.md): YuNet misses faces under about 20 px and scores faces over a
few hundred pixels lower and lower until it drops them. So the first pass scales the image so that
the smallest wanted face (``min_face``, original pixels) lands at the bottom of that range (never
past the cost cap ``max_side``); when a face as wide as the image's shorter side would be too large
for that pass, coarser passes follow until it fits. Boxes from all passes are merged with NMS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from moodlens.recognition.faces import Faces
from moodlens.recognition.track import iou_matrix

#: Boxes of one face found in two passes overlap at least this much (IoU) and are merged.
MERGE_IOU: float = 0.3


def detection_scales(width: int, height: int, min_face: float, max_side: int,
                     face_range: tuple[float, float] | None) -> tuple[float, ...]:
    """Scales (detector input / original) at which to run the detector, finest first.

    ``face_range``: the (smallest, largest) face widths the detector finds reliably in its input;
    ``None`` (a detector that does not say) gives one pass at ``max_side`` or the original size.
    """
    long_side, short_side = max(width, height), min(width, height)
    cap = max_side / long_side
    if face_range is None:
        return (min(1.0, cap),)
    smallest, largest = face_range
    scale = min(smallest / min_face, cap)
    scales = [scale]
    # A pass at ``coarsest`` finds a face as wide as the shorter side at the top of the range. Each
    # coarser pass starts where the previous one stops being reliable or, if that already suffices,
    # is exactly ``coarsest`` (the cheapest pass that covers the rest).
    coarsest = largest / short_side
    while scale > coarsest:
        scale = max(scale * smallest / largest, coarsest)
        scales.append(scale)
    return tuple(scales)


def merge_passes(passes: Sequence[tuple[float, Faces]], face_range: tuple[float, float]) -> Faces:
    """One face per person from ``(scale, faces in original pixels)`` per pass.

    Where passes overlap, a box the detector saw inside its reliable size range wins over one it saw
    outside it, then the higher score wins; the rest are dropped (greedy NMS at :data:`MERGE_IOU`).
    """
    if len(passes) == 1:
        return passes[0][1]
    smallest, largest = face_range
    boxes = np.concatenate([faces.boxes for _, faces in passes])
    scores = np.concatenate([faces.detector_scores for _, faces in passes])
    input_width = np.concatenate([faces.boxes[:, 2] * scale for scale, faces in passes])
    reliable = (input_width >= smallest) & (input_width <= largest)
    order = np.lexsort((-scores, ~reliable))  # reliable first, then by score
    overlap = iou_matrix(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(overlap[i, j] < MERGE_IOU for j in keep):
            keep.append(int(i))
    keep.sort()  # finest pass first, each pass in the detector's order
    return Faces(boxes[keep], scores[keep])
