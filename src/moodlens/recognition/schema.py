"""The one JSON shape of image results: ``moodlens analyze --json``, ``POST /api/v1/analyze`` and ``moodlens demo``.

Pydantic models only (no FastAPI), so the CLI can use them without the web stack; the web app's
OpenAPI schema is generated from the same classes, and :func:`schema_markdown` writes the table in
docs/recognition.md from them.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, Field

from moodlens.recognition.faces import Faces
from moodlens.spec import EMOTIONS

#: ``kind`` of a file that was not analysed: the image problems of ``ImageError`` plus files a folder
#: holds that are no images.
SKIP_KINDS = ("too_large", "unsupported", "unreadable", "invalid", "video", "not_image")


class FaceOut(BaseModel):
    box: list[int] = Field(description="x, y, width, height in pixels of the image (after EXIF rotation)",
                           examples=[[180, 40, 90, 90]])
    emotion: str = Field(description=f"most likely expression, one of {', '.join(EMOTIONS)}", examples=["happy"])
    confidence: float = Field(description="probability of `emotion`, 0..1", examples=[0.93])
    scores: dict[str, float] = Field(description="probability of each of the 7 expressions (sums to 1)")
    detector_score: float = Field(description="face detector confidence, 0..1")
    track_id: int | None = Field(default=None, description="stable id across live frames (live stream only)")


class ImageResult(BaseModel):
    index: int = Field(description="position of the file among the inputs (0-based): the request's files, or the "
                                   "files the CLI found")
    filename: str = Field(description="the file's name as uploaded, or its path as given to the CLI")
    width: int = Field(description="image width in pixels")
    height: int = Field(description="image height in pixels")
    faces: list[FaceOut] = Field(description="every face found, in detector order (empty: no face)")
    annotated_image: str | None = Field(
        default=None,
        description="API with `annotate=true` only: the photo with boxes and labels, as a data:image/jpeg;base64 URL")

    @classmethod
    def from_faces(cls, index: int, filename: str, shape: tuple[int, ...], faces: Faces,
                   annotated_image: str | None = None) -> ImageResult:
        return cls(index=index, filename=filename, width=int(shape[1]), height=int(shape[0]),
                   faces=[FaceOut(**face) for face in faces.to_list()], annotated_image=annotated_image)


class FileError(BaseModel):
    index: int = Field(description="position of the file among the inputs (0-based)")
    filename: str = Field(description="the file's name as uploaded, or its path")
    kind: str = Field(description=f"why it was not analysed: {', '.join(SKIP_KINDS)}", examples=["unsupported"])
    reason: str = Field(description="what is wrong, in words", examples=["not an image (content looks like text)"])
    status: int | None = Field(default=None, description="API only: HTTP status this file alone would get: 413 too "
                                                         "many pixels, 415 not a supported image, 422 "
                                                         "empty/truncated/too small/undecodable",
                               examples=[415])


class ModelRef(BaseModel):
    name: str = Field(description="the model card's name")
    version: str | None = Field(default=None, description="the model card's version, if any")
    sha256: str | None = Field(default=None, description="SHA-256 of the ONNX file")

    @classmethod
    def from_facts(cls, facts: Any) -> ModelRef:
        """From ``moodlens.events.model_facts.model_facts(analyzer)``."""
        return cls(name=facts.name, version=facts.version, sha256=facts.sha256)


class ImageResults(BaseModel):
    model: ModelRef | None = Field(default=None, description="the model that classified the faces")
    images: list[ImageResult] = Field(description="one entry per file that was analysed, in input order")
    errors: list[FileError] = Field(default_factory=list,
                                    description="one entry per file that was not analysed, with the reason")

    def to_json(self, **kwargs: Any) -> str:
        return self.model_dump_json(exclude_none=True, **kwargs)


#: The models in the order the documentation lists them.
DOCUMENTED = (ImageResults, ModelRef, ImageResult, FaceOut, FileError)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"object of {_type_name(args[1])}"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(annotation,
                                                                                getattr(annotation, "__name__", "?"))


def schema_markdown() -> str:
    """Markdown tables of the image-result models, field by field (docs/recognition.md holds this text)."""
    out = []
    for model in DOCUMENTED:
        out += [f"**{model.__name__}**", "", "| field | type | meaning |", "| --- | --- | --- |"]
        hints = typing.get_type_hints(model)
        for name, info in model.model_fields.items():
            required = "" if info.is_required() else " (optional)"
            out.append(f"| `{name}` | {_type_name(hints[name])}{required} | {info.description or ''} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
