"""Export trained checkpoints to ONNX, check the graph against PyTorch, and write the model's card."""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from moodlens.card import FLIP_TTA, ExportCheck, Int8Check, ModelCard, Provenance, card_path, file_sha256
from moodlens.spec import CROP_SIZE, IMAGE_SIZE
from moodlens.train.checkpoints import load_checkpoint
from moodlens.train.model import EmotionNet, ProbabilityModel
from moodlens.train.provenance import net_provenance

PARITY_TOLERANCE = 1e-4
INT8_MIN_AGREEMENT = 0.97
#: The feature extractor runs in int8; normalisation, softmax and averaging stay float, so the
#: probabilities keep full resolution and sum to 1 (quantising them too saves little; measured).
INT8_OPS = ("Conv", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm")
OPSET = 18


def calibration_sample(training_faces: np.ndarray, n: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` faces drawn at random (in their original order) to calibrate int8 quantisation."""
    pick = np.random.default_rng(seed).choice(len(training_faces), min(n, len(training_faces)), replace=False)
    return training_faces[np.sort(pick)]


def fold_batchnorm(net: EmotionNet) -> EmotionNet:
    """An eval-mode copy of ``net`` with every convolution's BatchNorm folded into it (same outputs).

    The exported graph then holds one biased convolution per layer, which is what
    :mod:`moodlens.train.from_onnx` reads back."""
    net = copy.deepcopy(net).eval()
    for stage in net.features:
        for i in range(len(stage) - 1):
            if isinstance(stage[i], torch.nn.Conv2d) and isinstance(stage[i + 1], torch.nn.BatchNorm2d):
                stage[i] = fuse_conv_bn_eval(stage[i], stage[i + 1])
                stage[i + 1] = torch.nn.Identity()
    return net


def write_graph(model: torch.nn.Module, path: Path) -> None:
    """Export ``model`` (faces (N, 1, 44, 44) -> probs (N, 7), any N) with the torch.export-based exporter."""
    dummy = torch.zeros(2, 1, CROP_SIZE, CROP_SIZE)
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # "torchvision is not installed": no torchvision op is used here
    try:
        with warnings.catch_warnings():
            # torch 2.13's exporter calls its own deprecated pytree API; nothing in this call can change that.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
            torch.onnx.export(model, (dummy,), str(path), input_names=["faces"], output_names=["probs"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=OPSET, dynamo=True,
                              external_data=False, verbose=False, report=False)
    finally:
        registry_log.setLevel(level)


def check_parity(model: torch.nn.Module, graph: Path, faces: np.ndarray) -> ExportCheck:
    """ONNX Runtime against PyTorch on the same faces; ``RuntimeError`` beyond :data:`PARITY_TOLERANCE`."""
    import onnxruntime as ort

    from moodlens.recognition.preprocess import to_model_input

    x = to_model_input(faces)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, {"faces": x})[0]
    max_diff = float(np.abs(ref - got).max())
    if not max_diff <= PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX parity check failed: max |p_onnx - p_torch| = {max_diff:.2e} > {PARITY_TOLERANCE}")
    return ExportCheck(parity_max_abs_diff=max_diff, parity_n=len(x), tolerance=PARITY_TOLERANCE)


def export_onnx(checkpoint: str | Path | list[str | Path], out: str | Path, *, flip_tta: bool = True,
                parity_faces: np.ndarray | None = None, calibration_faces: np.ndarray | None = None,
                int8_min_agreement: float = INT8_MIN_AGREEMENT, name: str | None = None) -> ModelCard:
    """Write ``out`` (.onnx) and its card (``out`` with ``.json``); return the card.

    ``checkpoint``: one run's checkpoint, or several: their probabilities are averaged
    inside the graph (an ensemble). ``parity_faces``: real uint8 faces (N, 48, 48) for the
    check; random noise if omitted. Raises ``RuntimeError`` when ONNX Runtime and PyTorch
    disagree by more than 1e-4. ``calibration_faces`` (training faces, never test faces):
    quantise the checked float model to int8 with them (see ``quantize_int8``).
    """
    paths = [Path(c) for c in (checkpoint if isinstance(checkpoint, list) else [checkpoint])]
    nets = [load_checkpoint(c)[0] for c in paths]
    model = ProbabilityModel(nets, flip_tta=flip_tta).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    float_path = out.with_name(out.stem + ".float.onnx") if calibration_faces is not None else out
    write_graph(ProbabilityModel([fold_batchnorm(n) for n in nets], flip_tta=flip_tta).eval(), float_path)

    if parity_faces is None:
        parity_faces = np.random.default_rng(0).integers(0, 256, (64, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    try:
        check = check_parity(model, float_path, parity_faces)
        if calibration_faces is not None:
            int8 = quantize_int8(float_path, out, calibration_faces, parity_faces, min_agreement=int8_min_agreement)
            check = check.model_copy(update={"int8": int8})
    finally:
        if calibration_faces is not None:
            float_path.unlink(missing_ok=True)

    provenance = Provenance(nets=tuple(net_provenance(c) for c in paths))
    card = ModelCard(name=name or out.stem, sha256=file_sha256(out), tta=FLIP_TTA if flip_tta else "none",
                     precision="int8" if calibration_faces is not None else "float32",
                     params=sum(n.params for n in provenance.nets), parity=check, training=provenance)
    card.save(card_path(out))
    return card


def quantize_int8(float_model: Path, out: Path, calibration_faces: np.ndarray,
                  check_faces: np.ndarray, min_agreement: float = INT8_MIN_AGREEMENT) -> Int8Check:
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
    agreement = float((ref.argmax(1) == got.argmax(1)).mean())
    if agreement < min_agreement:
        out.unlink(missing_ok=True)
        raise RuntimeError(f"int8 model agrees with the float model on only {agreement:.1%} "
                           f"of {len(x)} faces (< {min_agreement:.0%}); not written")
    return Int8Check(top1_agreement=agreement, max_abs_diff=float(np.abs(ref - got).max()), n=len(x),
                     calibration_n=len(calib), min_agreement=min_agreement)
