"""Pydantic models of every JSON request and response: the single description the OpenAPI page shows.

Image results (faces, images, file errors) are defined in :mod:`moodlens.recognition.schema`, which the
CLI shares without importing the web stack.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from moodlens.recognition.faces import Faces
from moodlens.recognition.schema import FaceOut, FileError, ImageResult, ImageResults, ModelRef

__all__ = ["AnalyzeResponse", "FaceOut", "FileError", "ImageResult", "ImageResults", "ModelRef", "LiveFrame",
           "ErrorDetail", "Health", "ModelMetrics", "ModelInfo", "Limits"]


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


#: The answer of ``POST /api/v1/analyze``: the same shape as ``moodlens analyze --json`` and ``moodlens demo``.
AnalyzeResponse = ImageResults


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
    card: dict[str, Any] = Field(description="the model card without file-system paths or training commands "
                                             "(`ModelCard.public()`); empty for a model without a card")


class Limits(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_files: int
    saving: bool = Field(description="true only when the operator started the server with --save-dir")
