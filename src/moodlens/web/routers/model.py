"""``GET /api/v1/model``: which model answers, and how well it measured (from its model card)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi import APIRouter, Request

from moodlens.spec import EMOTIONS
from moodlens.web.schemas import ModelInfo, ModelMetrics

router = APIRouter(prefix="/api/v1", tags=["model"])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


#: Model card fields the API shows. Everything else (training configuration, teacher and checkpoint paths,
#: the folders a model was trained in) stays on the server.
PUBLIC_CARD_FIELDS = ("name", "version", "classes", "input", "output", "tta", "precision", "params", "metrics")
#: Strings that look like a file-system location are dropped even inside public fields.
_PATH_LIKE = re.compile(r"(^[A-Za-z]:\\)|/|\\|\.(pt|pth|ckpt|onnx)$")


def _without_paths(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items() if not (isinstance(v, str) and _PATH_LIKE.search(v))}
    if isinstance(value, list):
        return [_without_paths(v) for v in value if not (isinstance(v, str) and _PATH_LIKE.search(v))]
    return value


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """The part of a model card that may leave the server: no file-system paths or checkpoint names."""
    return _without_paths({k: card[k] for k in PUBLIC_CARD_FIELDS if k in card})


def model_info(analyzer: Any) -> ModelInfo:
    """Describe the analyzer's classifier from its card; a card without metrics gives ``null`` metrics."""
    classifier = analyzer.classifier
    card: dict[str, Any] = dict(classifier.card or {})
    metrics = card.get("metrics")
    split = metrics.get("publictest") if isinstance(metrics, dict) else None
    split = split if isinstance(split, dict) else {}
    detector = analyzer.detector
    version = card.get("version")
    return ModelInfo(
        name=str(card.get("name") or classifier.model_path.stem),
        version=None if version is None else str(version),
        sha256=hashlib.sha256(classifier.model_path.read_bytes()).hexdigest()[:16],
        classes=list(card.get("classes") or EMOTIONS),
        detector=str(getattr(detector, "name", type(detector).__name__)),
        metrics=ModelMetrics(accuracy=_number(split.get("accuracy")), macro_f1=_number(split.get("macro_f1"))),
        card=public_card(card),
    )


@router.get("/model", response_model=ModelInfo, summary="The model in use: name, version, classes, measured accuracy")
async def get_model(request: Request) -> ModelInfo:
    return request.app.state.model_info
