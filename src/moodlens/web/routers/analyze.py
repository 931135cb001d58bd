"""``POST /api/v1/analyze``: photos in, faces and expressions out (HTTP to library calls and back)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from moodlens.recognition.annotate import annotate as draw_faces
from moodlens.recognition.faces import Faces
from moodlens.recognition.imageio import ImageError, decode_image
from moodlens.web.deps import Pool, Settings, Worker, admit_or_503, read_uploads
from moodlens.web.schemas import AnalyzeResponse, ErrorDetail, FileError, ImageResult, Limits

router = APIRouter(prefix="/api/v1", tags=["analyze"])

_MULTIPART_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                             "description": "one or more images (JPEG, PNG, WebP, GIF, BMP, TIFF, PNM); the format is "
                                            "recognised from the content, not the file name"}}}}}}}


#: HTTP status of one rejected file, by :class:`ImageError` kind: 413 too many pixels, 415 not a
#: supported image, 422 anything else.
IMAGE_ERROR_STATUS = {"too_large": 413, "unsupported": 415, "unreadable": 422, "invalid": 422}


def encode_jpeg_data_url(image: Any, quality: int = 85) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def analyze_bytes(worker: Worker, filename: str, data: bytes, max_pixels: int) -> tuple[np.ndarray, Faces]:
    """Decode one upload by its content (never its name) and analyse it; raises ``ImageError``."""
    image = decode_image(data, name=filename, max_pixels=max_pixels)
    return image, worker.photos.analyze(image, name=filename)


def file_error(index: int, filename: str, error: ImageError) -> FileError:
    reason = str(error).removeprefix(f"{filename}: ")
    return FileError(index=index, filename=filename, kind=error.kind, status=IMAGE_ERROR_STATUS[error.kind],
                     reason=reason)


def analyze_file(worker: Worker, index: int, filename: str, data: bytes, max_pixels: int,
                 annotate: bool) -> ImageResult | FileError:
    """One file of a batch: its result, or a ``FileError`` naming it and the reason (never an exception)."""
    try:
        image, faces = analyze_bytes(worker, filename, data, max_pixels)
    except ImageError as exc:
        return file_error(index, filename, exc)
    annotated = encode_jpeg_data_url(draw_faces(image, faces)) if annotate else None
    return ImageResult.from_faces(index, filename, image.shape, faces, annotated)


def save_upload(save_dir: Path, filename: str, data: bytes, result: ImageResult) -> None:
    """Operator opt-in (``--save-dir``): keep the original bytes and the result JSON side by side."""
    save_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(filename).name)[:80] or "upload"
    (save_dir / f"{stem}-{safe}").write_bytes(data)
    record = result.model_dump(exclude={"annotated_image"})
    (save_dir / f"{stem}-{safe}.json").write_text(json.dumps(record, indent=1))


def batch_status(images: list[ImageResult], errors: list[FileError]) -> int:
    """200 all analysed; 207 some rejected; all rejected: their common status, or 400 if they differ."""
    if not errors:
        return 200
    if images:
        return 207
    statuses = Counter(e.status for e in errors)
    return statuses.most_common(1)[0][0] if len(statuses) == 1 else 400


@router.post(
    "/analyze",
    response_model=AnalyzeResponse,
    response_model_exclude_none=True,
    summary="Detect faces and classify their expressions in one or more photos",
    openapi_extra=_MULTIPART_BODY,
    responses={
        207: {"model": AnalyzeResponse, "description": "some files analysed, some rejected (see `errors`)"},
        400: {"model": AnalyzeResponse, "description": "every file rejected, for different reasons; or a "
                                                       "malformed multipart body (`detail`)"},
        408: {"model": ErrorDetail, "description": "the body stalled (read timeout) or took too long"},
        413: {"model": ErrorDetail, "description": "body over the upload limit, too many files, or (per file) "
                                                   "too many pixels"},
        415: {"model": AnalyzeResponse, "description": "not multipart, or every file is not a supported image"},
        422: {"model": AnalyzeResponse, "description": "no `files` field, or every file empty/truncated/too small"},
        503: {"model": ErrorDetail, "description": "overloaded: all workers busy and the queue full, or too many "
                                                   "uploads being received; retry later"},
    },
)
async def analyze(
    request: Request,
    response: Response,
    settings: Settings,
    pool: Pool,
    annotate: Annotated[bool, Query(description="also return each photo annotated with boxes and labels")] = False,
) -> AnalyzeResponse:
    """Send images in the multipart field `files`. Each file is judged by its content; a bad file gets an
    entry in `errors` naming it and the reason, and the rest of the batch is still analysed."""
    # The body is read before a worker slot is taken, so slow uploads never hold analysis capacity.
    files = await read_uploads(request, settings)
    with admit_or_503(pool):
        images: list[ImageResult] = []
        errors: list[FileError] = []
        for index, (filename, data) in enumerate(files):
            result = await pool.run(analyze_file, index, filename, data, settings.max_pixels, annotate)
            if isinstance(result, FileError):
                errors.append(result)
                continue
            images.append(result)
            if settings.save_dir is not None:
                await run_in_threadpool(save_upload, settings.save_dir, filename, data, result)
    response.status_code = batch_status(images, errors)
    return AnalyzeResponse(model=request.app.state.model_ref, images=images, errors=errors)


@router.get("/limits", response_model=Limits, summary="Upload limits of this server")
async def limits(settings: Settings) -> Limits:
    return Limits(**settings.limits())
