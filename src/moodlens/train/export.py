"""Export a trained checkpoint to ONNX and check it against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodlens.spec import CROP_SIZE, EMOTIONS, FACE_MARGIN, IMAGE_SIZE
from moodlens.train.loop import load_checkpoint
from moodlens.train.model import ProbabilityModel

PARITY_TOLERANCE = 1e-4
INT8_MIN_AGREEMENT = 0.97
#: The feature extractor runs in int8; normalisation, softmax and averaging stay float, so the
#: probabilities keep full resolution and sum to 1 (quantising them too saves little; measured).
INT8_OPS = ("Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm")


def calibration_sample(training_faces: np.ndarray, n: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` faces drawn at random (in their original order) to calibrate int8 quantisation."""
    pick = np.random.default_rng(seed).choice(len(training_faces), min(n, len(training_faces)), replace=False)
    return training_faces[np.sort(pick)]


def export_onnx(checkpoint: str | Path | list[str | Path], out: str | Path, *, flip_tta: bool = True,
                parity_faces: np.ndarray | None = None, calibration_faces: np.ndarray | None = None,
                int8_min_agreement: float = INT8_MIN_AGREEMENT,
                metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``out`` (.onnx) and ``out.json`` (metadata); return the parity report.

    ``checkpoint``: one run's checkpoint, or several: their probabilities are averaged
    inside the graph (an ensemble). ``parity_faces``: real uint8 faces (N, 48, 48) for the
    check; random noise if omitted. Raises ``RuntimeError`` when ONNX Runtime and PyTorch
    disagree by more than 1e-4. ``calibration_faces`` (training faces, never test faces):
    quantise the checked float model to int8 with them (see ``quantize_int8``).
    """
    import onnxruntime as ort

    from moodlens.recognition.preprocess import to_model_input

    paths = [Path(c) for c in (checkpoint if isinstance(checkpoint, list) else [checkpoint])]
    loaded = [load_checkpoint(c) for c in paths]
    model = ProbabilityModel([net for net, _ in loaded], flip_tta=flip_tta).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    float_path = out.with_name(out.stem + ".float.onnx") if calibration_faces is not None else out
    dummy = torch.zeros(2, 1, CROP_SIZE, CROP_SIZE)
    torch.onnx.export(model, (dummy,), str(float_path), input_names=["faces"], output_names=["probs"],
                      dynamic_axes={"faces": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17,
                      dynamo=False)

    if parity_faces is None:
        parity_faces = np.random.default_rng(0).integers(0, 256, (64, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    x = to_model_input(parity_faces)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"]).run(None, {"faces": x})[0]
    max_diff = float(np.abs(ref - got).max())
    report: dict[str, Any] = {"parity_max_abs_diff": max_diff, "parity_n": int(len(x)),
                              "tolerance": PARITY_TOLERANCE}
    if not max_diff <= PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX parity check failed: max |p_onnx - p_torch| = {max_diff:.2e} > {PARITY_TOLERANCE}")
    if calibration_faces is not None:
        try:
            report["int8"] = quantize_int8(float_path, out, calibration_faces, parity_faces,
                                           min_agreement=int8_min_agreement)
        finally:
            float_path.unlink(missing_ok=True)

    configs = [ck["config"] for _, ck in loaded]
    meta = {"name": out.stem, "classes": list(EMOTIONS), "input": {"shape": [None, 1, CROP_SIZE, CROP_SIZE],
            "pixels": "raw grayscale 0..255, float32", "crop": f"centre {CROP_SIZE}x{CROP_SIZE} of a "
            f"{IMAGE_SIZE}x{IMAGE_SIZE} face", "face_margin": FACE_MARGIN},
            "output": "softmax probabilities (N, 7)", "tta": "horizontal flip average" if flip_tta else "none",
            "ensemble": [str(c) for c in paths], "precision": "int8" if calibration_faces is not None else "float32",
            "config": configs[0], "configs": configs,
            "training_time_s": round(sum(ck.get("elapsed_s", 0.0) for _, ck in loaded), 1),
            "parity": report}
    meta.update(metadata or {})
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return report


def quantize_int8(float_model: Path, out: Path, calibration_faces: np.ndarray,
                  check_faces: np.ndarray, min_agreement: float = INT8_MIN_AGREEMENT) -> dict[str, Any]:
    """Static int8 quantisation (QDQ, per-channel weights) with ONNX Runtime's tools.

    Activation ranges come from ``calibration_faces`` (use training faces). The result
    is compared with the float model on ``check_faces``: top-1 agreement must reach
    ``min_agreement`` or ``RuntimeError`` is raised (and nothing is left at ``out``).
    """
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from moodlens.recognition.preprocess import to_model_input

    calib = to_model_input(calibration_faces)

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"faces": calib[i:i + 64]} for i in range(0, len(calib), 64)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_model), str(prepared))
        quantize_static(str(prepared), str(out), _Batches(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=list(INT8_OPS))
    x = to_model_input(check_faces)
    ref = ort.InferenceSession(str(float_model), providers=["CPUExecutionProvider"]).run(None, {"faces": x})[0]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"faces": x})[0]
    report = {"top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
              "max_abs_diff": float(np.abs(ref - got).max()), "n": int(len(x)),
              "calibration_n": int(len(calib)), "min_agreement": min_agreement}
    if report["top1_agreement"] < min_agreement:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"int8 model agrees with the float model on only {report['top1_agreement']:.1%} "
                           f"of {len(x)} faces (< {min_agreement:.0%}); not written")
    return report
