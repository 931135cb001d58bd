"""Export a trained checkpoint to ONNX and check it against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodlens.spec import CROP_SIZE, EMOTIONS, FACE_MARGIN, IMAGE_SIZE
from moodlens.train.loop import TrainConfig, build_model, checkpoint_weights
from moodlens.train.model import ProbabilityModel

PARITY_TOLERANCE = 1e-4


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load ``final.pt`` (EMA weights) or ``last.pt`` (its EMA copy) as an eval-mode net."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(ck["config"])
    net = build_model(cfg)
    net.load_state_dict(checkpoint_weights(ck))
    return net.eval(), ck


def export_onnx(checkpoint: str | Path, out: str | Path, *, flip_tta: bool = True,
                parity_faces: np.ndarray | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``out`` (.onnx) and ``out.json`` (metadata); return the parity report.

    ``parity_faces``: real uint8 faces (N, 48, 48) for the check; random noise if omitted.
    Raises ``RuntimeError`` when ONNX Runtime and PyTorch disagree by more than 1e-4.
    """
    import onnxruntime as ort

    from moodlens.preprocess import to_model_input

    net, ck = load_checkpoint(checkpoint)
    model = ProbabilityModel(net, flip_tta=flip_tta).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(2, 1, CROP_SIZE, CROP_SIZE)
    torch.onnx.export(model, (dummy,), str(out), input_names=["faces"], output_names=["probs"],
                      dynamic_axes={"faces": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17,
                      dynamo=False)

    if parity_faces is None:
        parity_faces = np.random.default_rng(0).integers(0, 256, (64, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    x = to_model_input(parity_faces)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"faces": x})[0]
    max_diff = float(np.abs(ref - got).max())
    report = {"parity_max_abs_diff": max_diff, "parity_n": int(len(x)), "tolerance": PARITY_TOLERANCE}
    if not max_diff <= PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX parity check failed: max |p_onnx - p_torch| = {max_diff:.2e} > {PARITY_TOLERANCE}")

    meta = {"name": out.stem, "classes": list(EMOTIONS), "input": {"shape": [None, 1, CROP_SIZE, CROP_SIZE],
            "pixels": "raw grayscale 0..255, float32", "crop": f"centre {CROP_SIZE}x{CROP_SIZE} of a "
            f"{IMAGE_SIZE}x{IMAGE_SIZE} face", "face_margin": FACE_MARGIN},
            "output": "softmax probabilities (N, 7)", "tta": "horizontal flip average" if flip_tta else "none",
            "config": ck["config"], "training_time_s": round(ck.get("elapsed_s", 0.0), 1),
            "parity": report}
    meta.update(metadata or {})
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return report
