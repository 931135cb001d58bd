"""``EmotionClassifier``: the shipped ONNX model on ONNX Runtime (no torch)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from moodlens.card import ModelCard, file_sha256
from moodlens.recognition.preprocess import to_model_input
from moodlens.spec import CROP_SIZE, EMOTIONS


def models_dir() -> Path:
    """Where the shipped models live inside the package."""
    return Path(str(resources.files("moodlens") / "models"))


def default_model_path() -> Path:
    """The model that ships inside the package and is used unless another is named."""
    return models_dir() / "default.onnx"


def shipped_models() -> dict[str, Path]:
    """Name -> path of every model that ships with the package (``default``, ``accurate``, ...)."""
    return {p.stem: p for p in sorted(models_dir().glob("*.onnx"))}


def resolve_model(model: str | Path | None) -> Path:
    """``None`` or a shipped model's name (``default``, ``accurate``) or an ONNX file path -> path."""
    if model is None:
        return default_model_path()
    shipped = shipped_models()
    if str(model) in shipped:
        return shipped[str(model)]
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path} (a path to an .onnx file, or one of the shipped "
                                f"models: {', '.join(shipped)})")
    return path


class EmotionClassifier:
    """Classify 48x48 uint8 face crops into the 7 expressions, in batches.

    One ONNX Runtime session is created and reused for every call. ``card`` is the model's
    :class:`~moodlens.card.ModelCard` (``None`` for an ONNX file without one); ``name`` and ``sha256``
    identify the model either way.
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None) -> None:
        self.model_path = resolve_model(model)
        opts = ort.SessionOptions()
        self.threads = threads or min(os.cpu_count() or 1, 4)
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        if list(inp.shape[1:]) != [1, CROP_SIZE, CROP_SIZE]:
            raise ValueError(f"{self.model_path}: model input {inp.shape} does not match "
                             f"(N, 1, {CROP_SIZE}, {CROP_SIZE})")
        self.card: ModelCard | None = ModelCard.of_model(self.model_path)  # validated: classes are EMOTIONS
        self.name = self.card.name if self.card else self.model_path.stem
        self.sha256 = self.card.sha256 if self.card else file_sha256(self.model_path)

    def predict(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 faces (N, 48, 48) -> probabilities (N, 7) float32."""
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if len(faces) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        out = [self.session.run(None, {self.input_name: to_model_input(faces[i:i + batch_size])})[0]
               for i in range(0, len(faces), batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)
