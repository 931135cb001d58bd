"""``EmotionClassifier``: the shipped ONNX model on ONNX Runtime (no torch)."""

from __future__ import annotations

import itertools
import os
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from moodlens.card import ModelCard, file_sha256
from moodlens.recognition.preprocess import to_model_input
from moodlens.settings import DEFAULTS, FLIP_MODES
from moodlens.spec import CROP_SIZE, EMOTIONS


def models_dir() -> Path:
    """Where the shipped models live inside the package."""
    return Path(str(resources.files("moodlens") / "models"))


def default_model_path() -> Path:
    """The model that ships inside the package and is used unless another is named."""
    return models_dir() / "default.onnx"


def shipped_models() -> dict[str, Path]:
    """Name -> path of every model that ships with the package (``default``, ``accurate``, ...); derived
    graphs of a model (``default.flipfree.onnx``) are part of that model, not models of their own."""
    return {p.stem: p for p in sorted(models_dir().glob("*.onnx")) if "." not in p.stem}


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


def flip_free_graph(model_path: Path, card: ModelCard | None) -> Path | None:
    """The graph to run for ``flip="alternate"``: the card's ``flip_free_graph`` (a file beside the model),
    the model itself when its card says it has no flip averaging, else None (run the model as it is)."""
    if card is None:
        return None
    name = card.flip_free_graph
    if name:
        path = model_path.with_name(Path(name).name)
        if path.is_file():
            return path
        warnings.warn(f"{model_path}: its flip-free graph {path.name} is missing; classifying with flip "
                      "averaging instead (twice the work)", RuntimeWarning, stacklevel=3)
        return None
    return model_path if card.tta == "none" else None


class EmotionClassifier:
    """Classify 48x48 uint8 face crops into the 7 expressions, in batches.

    ``flip``: ``"average"`` runs the model as exported (the shipped models average each face with its
    mirror image inside the graph). ``"alternate"`` runs the model's flip-free graph, on half the work,
    and mirrors the faces of every other call, so that a track classified once per frame and averaged
    over frames still sees both views (measured, docs/recognition.md); a model with flip averaging but
    no flip-free graph runs as with ``"average"``. One ONNX Runtime session is reused for every call.
    ``card`` is the model's :class:`~moodlens.card.ModelCard` (``None`` for an ONNX file without one);
    ``name`` and ``sha256`` identify the model either way.
    """

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 flip: str = DEFAULTS.flip) -> None:
        if flip not in FLIP_MODES:
            raise ValueError(f"flip must be one of {', '.join(FLIP_MODES)}, not {flip!r}")
        self.model_path = resolve_model(model)
        self.card: ModelCard | None = ModelCard.of_model(self.model_path)  # validated: classes are EMOTIONS
        free = flip_free_graph(self.model_path, self.card) if flip == "alternate" else None
        #: The ONNX file the session runs (the model, or its flip-free graph).
        self.graph_path = free or self.model_path
        self._calls = itertools.count() if free else None
        opts = ort.SessionOptions()
        self.threads = threads or min(os.cpu_count() or 1, 4)
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: with 2 threads on 2 cores shared with decoding and
        # detection, spinning cost 20-60 % of batch-64 throughput (measured, docs/recognition.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.graph_path), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        if list(inp.shape[1:]) != [1, CROP_SIZE, CROP_SIZE]:
            raise ValueError(f"{self.model_path}: model input {inp.shape} does not match "
                             f"(N, 1, {CROP_SIZE}, {CROP_SIZE})")
        self.name = self.card.name if self.card else self.model_path.stem
        self.sha256 = self.card.sha256 if self.card else file_sha256(self.model_path)

    def predict(self, faces: np.ndarray, batch_size: int = 256, mirror: np.ndarray | None = None) -> np.ndarray:
        """uint8 faces (N, 48, 48) -> probabilities (N, 7) float32.

        ``mirror`` (``flip="alternate"`` only): which faces to classify as their mirror image, e.g. those of
        every other frame of a video when one batch holds several frames; default: all faces of every
        other call. Ignored when the model averages flips itself.
        """
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if len(faces) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        if self._calls is not None:
            if mirror is None:
                mirror = np.full(len(faces), next(self._calls) % 2 == 1)
            mirror = np.asarray(mirror, bool)
            if mirror.any():  # mirror image; the centre crop is symmetric, so it commutes
                faces = faces.copy()
                faces[mirror] = faces[mirror][:, :, ::-1]
        out = [self.session.run(None, {self.input_name: to_model_input(faces[i:i + batch_size])})[0]
               for i in range(0, len(faces), batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)
