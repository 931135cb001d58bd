"""``GET /api/v1/model``: which model answers, and how well it measured (from its model card)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from moodlens.spec import EMOTIONS
from moodlens.web.schemas import ModelInfo, ModelMetrics

router = APIRouter(prefix="/api/v1", tags=["model"])


def model_info(analyzer: Any) -> ModelInfo:
    """Describe the analyzer's classifier from its card; a model without a card or metrics gives ``null`` metrics."""
    classifier = analyzer.classifier
    card = classifier.card
    split = card.split("PublicTest") if card else None
    detector = analyzer.detector
    return ModelInfo(
        name=classifier.name,
        version=card.version if card else None,
        sha256=classifier.sha256[:16],
        classes=list(EMOTIONS),
        detector=str(getattr(detector, "name", type(detector).__name__)),
        metrics=ModelMetrics(accuracy=split.accuracy if split else None, macro_f1=split.macro_f1 if split else None),
        card=card.public() if card else {},
    )


@router.get("/model", response_model=ModelInfo, summary="The model in use: name, version, classes, measured accuracy")
async def get_model(request: Request) -> ModelInfo:
    return request.app.state.model_info
