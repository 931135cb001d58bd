"""Loading images safely: paths, bytes or arrays in, BGR uint8 out, clear errors otherwise.

Every way an image enters moodlens (library, CLI, web upload) goes through
:func:`load_image`, so the checks below (content sniffing, pixel cap against
decompression bombs, truncation, degenerate sizes) live in one place.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

#: Largest image accepted, in pixels (a 64-megapixel photo decodes to ~190 MB of BGR).
MAX_PIXELS: int = 64_000_000
#: Smallest side accepted: anything smaller cannot hold a face and is almost always a broken file.
MIN_SIDE: int = 8

ColorOrder = Literal["bgr", "rgb"]

# Leading bytes of the formats OpenCV decodes; used to reject non-images before decoding (WebP: RIFF....WEBP,
# in sniff_format).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    # PBM, PGM, PPM: plain text (P1-P3) or binary (P4-P6).
    (b"P1", "pnm"), (b"P2", "pnm"), (b"P3", "pnm"), (b"P4", "pnm"), (b"P5", "pnm"), (b"P6", "pnm"),
)
#: The file names of each format the loader reads (the keys are what :func:`sniff_format` returns).
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "jpeg": (".jpg", ".jpeg", ".jpe"), "png": (".png",), "bmp": (".bmp",), "gif": (".gif",),
    "tiff": (".tif", ".tiff"), "webp": (".webp",), "pnm": (".pnm", ".pbm", ".pgm", ".ppm"),
}
#: Suffixes of the image files taken from a folder, in every command that reads folders (``analyze``,
#: ``event ingest --photos``, the Ray photo path, the dataset's image folders); ``analyze`` also tries a file
#: named explicitly, whatever its name.
IMAGE_SUFFIXES: frozenset[str] = frozenset(suffix for names in FORMAT_SUFFIXES.values() for suffix in names)


class ImageError(ValueError):
    """An input that is not a usable image; the message says which input and why.

    ``kind`` says what is wrong, for callers that react differently (e.g. HTTP status codes):
    ``too_large`` (over the pixel limit), ``unsupported`` (not an image format we read),
    ``unreadable`` (missing or unreadable file) or ``invalid`` (anything else: empty, tiny, corrupt).
    """

    KINDS = ("too_large", "unsupported", "unreadable", "invalid")

    def __init__(self, message: str, kind: str = "invalid") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown ImageError kind {kind!r}")
        super().__init__(message)
        self.kind = kind


def sniff_format(data: bytes) -> str | None:
    """Image format from the leading bytes, or None when it is not an image we read."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def _describe_non_image(data: bytes) -> str:
    head = data[:8]
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if b"ftyp" in data[4:12]:
        return "an MP4/MOV/HEIC container"
    try:
        data[:512].decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "an unknown binary format"


def _looks_truncated(data: bytes, fmt: str) -> bool:
    """True when the file stops before its format's end marker."""
    if fmt == "jpeg":
        # Entropy-coded data escapes 0xFF, so an end-of-image marker after the last scan start is reliable.
        return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
    if fmt == "png":
        return data.rfind(b"IEND") == -1
    return False


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header only, without decoding pixels."""
    import io

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own bomb warning: we apply our own cap below
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.size
        except Exception:  # noqa: BLE001 - any header failure is reported by the decoder step
            return None


def check_size(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`ImageError` for empty, tiny or too-large images."""
    if width == 0 or height == 0:
        raise ImageError(f"{name}: empty image ({width}x{height})")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: image is {width}x{height}, too small to contain a face (min side {MIN_SIDE} px)")
    if width * height > max_pixels:
        raise ImageError(f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
                         f"{max_pixels:,} (possible decompression bomb); scale it down first", kind="too_large")


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes -> BGR uint8, honouring EXIF orientation."""
    if len(data) == 0:
        raise ImageError(f"{name}: empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(f"{name}: not a supported image (looks like {_describe_non_image(data)}); "
                         "expected JPEG, PNG, BMP, GIF, TIFF, WebP or PNM", kind="unsupported")
    size = _header_size(data)
    if size is not None:
        check_size(size[0], size[1], name, max_pixels)
    if _looks_truncated(data, fmt):
        raise ImageError(f"{name}: truncated {fmt.upper()} file ({len(data):,} bytes, ends before the image does)")
    if size is None:
        raise ImageError(f"{name}: corrupt {fmt.upper()} header")
    # IMREAD_COLOR turns gray/alpha/16-bit into 8-bit BGR and applies EXIF rotation (phone photos).
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV refuses some headers outright instead of returning None
        raise ImageError(f"{name}: {fmt.upper()} data could not be decoded ({_first_line(exc)})") from None
    if image is None or image.size == 0:
        raise ImageError(f"{name}: {fmt.upper()} data could not be decoded (corrupt or truncated)")
    return image


def _to_uint8(a: np.ndarray, name: str) -> np.ndarray:
    """Pixel values as uint8: uint16 keeps its high byte, bool is 0/255, floats in [0, 1] are scaled."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return (a >> 8).astype(np.uint8)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError(f"{name}: float image contains NaN or infinity")
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(a * scale, 0, 255).round().astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.uint8)
    raise ImageError(f"{name}: unsupported array dtype {a.dtype}")


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(exc).__name__


def rescale(image: np.ndarray, scale: float, name: str = "<image>") -> np.ndarray:
    """``image`` resized by ``scale`` (area averaging when shrinking).

    Raises :class:`ImageError` when the result would have a side under one pixel (an image far thinner than
    it is long holds no face) or when OpenCV cannot resize it.
    """
    h, w = image.shape[:2]
    size = (round(w * scale), round(h * scale))
    if min(size) < 1:
        raise ImageError(f"{name}: image is {w}x{h}, too thin to hold a face (scaled by {scale:.3g} it would be "
                         f"{size[0]}x{size[1]})")
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    try:
        return cv2.resize(image, size, interpolation=interpolation)
    except cv2.error as exc:
        raise ImageError(f"{name}: image of {w}x{h} could not be resized ({_first_line(exc)})") from None


def to_bgr(array: np.ndarray, color: ColorOrder = "bgr", name: str = "<array>",
           max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Any image array (gray, gray+1, BGR/RGB, BGRA/RGBA; uint8, uint16, float in [0, 1], bool) -> BGR uint8."""
    if color not in ("bgr", "rgb"):
        raise ValueError(f"color must be 'bgr' or 'rgb', not {color!r}")
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{name}: unsupported array shape {a.shape}; "
                         "expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    check_size(a.shape[1], a.shape[0], name, max_pixels)
    a = _to_uint8(a, name)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    try:
        return _to_three_channels(a, color)
    except cv2.error as exc:
        raise ImageError(f"{name}: array of shape {a.shape} could not be converted ({_first_line(exc)})") from None


def _to_three_channels(a: np.ndarray, color: ColorOrder) -> np.ndarray:
    if a.ndim == 2:
        return cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    if a.shape[2] == 4:
        a = cv2.cvtColor(a, cv2.COLOR_RGBA2BGR if color == "rgb" else cv2.COLOR_BGRA2BGR)
    elif color == "rgb":
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    # Detectors in C need one contiguous buffer of exactly H*W*3 bytes.
    return np.ascontiguousarray(a)


def load_image(src: str | Path | bytes | bytearray | memoryview | np.ndarray, max_pixels: int = MAX_PIXELS,
               color: ColorOrder = "bgr") -> np.ndarray:
    """Load a path, encoded bytes or an array as a BGR uint8 image.

    ``color`` says the channel order of arrays (files and bytes carry their own).
    Raises :class:`ImageError` naming the input and the reason when it is not usable.
    """
    if isinstance(src, np.ndarray):
        return to_bgr(src, color=color, max_pixels=max_pixels)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return decode_image(bytes(src), max_pixels=max_pixels)
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{path}: file not found", kind="unreadable")
        if not path.is_file():
            raise ImageError(f"{path}: not a file", kind="unreadable")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{path}: cannot read ({exc.strerror or exc})", kind="unreadable") from exc
        return decode_image(data, name=str(path), max_pixels=max_pixels)
    raise TypeError(f"cannot load an image from {type(src).__name__}; pass a path, bytes or a numpy array")


def iter_image_paths(paths: list[str | Path] | tuple[str | Path, ...]) -> list[Path]:
    """Files named, plus images (by suffix) found recursively in folders named, in a stable order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(p)  # missing files are reported by load_image, not silently dropped
    return found
