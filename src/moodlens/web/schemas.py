"""Pydantic models of every JSON request and response: the single description the OpenAPI page shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from moodlens.recognition.faces import Faces
from moodlens.spec import EMOTIONS


class FaceOut(BaseModel):
    box: list[int] = Field(description="x, y, width, height in pixels of the uploaded image",
                           examples=[[180, 40, 90, 90]])
    emotion: str = Field(description=f"most likely expression, one of {', '.join(EMOTIONS)}", examples=["happy"])
    confidence: float = Field(description="probability of `emotion`, 0..1", examples=[0.93])
    scores: dict[str, float] = Field(description="probability of each of the 7 expressions (sums to 1)")
    detector_score: float = Field(description="face detector confidence, 0..1")
    track_id: int | None = Field(default=None, description="stable id across live frames (live stream only)")


class ImageResult(BaseModel):
    index: int = Field(description="position of the file in the request (0-based)")
    filename: str
    width: int
    height: int
    faces: list[FaceOut]
    annotated_image: str | None = Field(
        default=None,
        description="with `annotate=true`: the photo with boxes and labels, as a data:image/jpeg;base64 URL")

    @classmethod
    def from_faces(cls, index: int, filename: str, shape: tuple[int, ...], faces: Faces,
                   annotated_image: str | None = None) -> ImageResult:
        return cls(index=index, filename=filename, width=int(shape[1]), height=int(shape[0]),
                   faces=[FaceOut(**face) for face in faces.to_list()], annotated_image=annotated_image)


class LiveFrame(BaseModel):
    """Answer to one frame on the live WebSocket (``/api/v1/live``)."""

    width: int
    height: int
    faces: list[FaceOut]
    ms: float = Field(description="server time for this frame, milliseconds")

    @classmethod
    def from_faces(cls, shape: tuple[int, ...], faces: Faces, seconds: float) -> LiveFrame:
        return cls(width=int(shape[1]), height=int(shape[0]), faces=[FaceOut(**f) for f in faces.to_list()],
                   ms=round(seconds * 1000, 1))


class FileError(BaseModel):
    index: int = Field(description="position of the file in the request (0-based)")
    filename: str
    status: int = Field(description="HTTP status this file alone would get: 413 too many pixels, 415 not a "
                                    "supported image, 422 empty/truncated/too small/undecodable",
                        examples=[415])
    reason: str = Field(examples=["not an image (content looks like text)"])


class AnalyzeResponse(BaseModel):
    images: list[ImageResult] = Field(description="one entry per file that was analysed, in upload order")
    errors: list[FileError] = Field(default_factory=list, description="one entry per file that was rejected")


class ErrorDetail(BaseModel):
    detail: str


class Health(BaseModel):
    status: str = "ok"
    version: str
    in_flight: int = Field(description="analysis requests in progress or queued")
    capacity: int = Field(description="requests accepted at once (workers + queue) before answering 503")


class ModelMetrics(BaseModel):
    split: str = "publictest"
    accuracy: float | None = Field(default=None, description="measured FER2013 PublicTest accuracy, if the model "
                                                             "card reports it")
    macro_f1: float | None = None


class ModelInfo(BaseModel):
    name: str
    version: str | None = Field(description="model version from the model card, if any")
    sha256: str = Field(description="first 16 hex digits of the ONNX file's SHA-256")
    classes: list[str]
    detector: str
    metrics: ModelMetrics
    card: dict[str, Any] = Field(description="the model card's public part: input format, precision, size and "
                                             "measured metrics (never file paths or training checkpoints)")


class Limits(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_files: int
    saving: bool = Field(description="true only when the operator started the server with --save-dir")
