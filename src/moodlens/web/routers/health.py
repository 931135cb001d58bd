"""``GET /healthz``: liveness, answered on the event loop even while analyses run on worker threads."""

from __future__ import annotations

from fastapi import APIRouter

from moodlens import __version__
from moodlens.web.deps import Pool
from moodlens.web.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz(pool: Pool) -> Health:
    return Health(version=__version__, in_flight=pool.in_flight, capacity=pool.capacity)
