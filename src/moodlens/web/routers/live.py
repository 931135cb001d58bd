"""``WS /api/v1/live``: camera frames in, faces out, one frame in flight per connection.

The page sends each frame as one binary message (JPEG/PNG/WebP bytes) and waits for the JSON
answer before sending the next, so a slow server lowers the frame rate instead of building a
backlog. Each connection runs its own stream pipeline (:class:`moodlens.stream.Pipeline`) fed by a
:class:`moodlens.stream.PushSource`: the same detection schedule, tracker, smoothing and summary as
``moodlens video`` and ``moodlens event ingest``, so faces keep their ``track_id`` across frames.
Frames are decoded in memory and never stored, even when the operator enabled saving.
A connection that sends nothing for ``frame_timeout_s`` is closed, so idle sockets do not pile up, and at
most ``max_live`` connections are open at once: the next is told the server is busy and closed (1013).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from moodlens.recognition.faces import Faces
from moodlens.recognition.imageio import ImageError, decode_image
from moodlens.stream import Pipeline, PushSource
from moodlens.web.deps import Overloaded, Worker
from moodlens.web.routers.analyze import file_error
from moodlens.web.schemas import LiveFrame

router = APIRouter(tags=["live"])


def analyze_live_frame(worker: Worker, source: PushSource, pipeline: Pipeline, data: bytes,
                       max_pixels: int) -> tuple[tuple[int, ...], Faces]:
    """Decode one frame, push it into the connection's source and run the connection's pipeline on it."""
    image = decode_image(data, name="frame", max_pixels=max_pixels)
    source.push(image)
    frame = source.take()
    return image.shape, pipeline.process(frame, worker.live)


@router.websocket("/api/v1/live")
async def live(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        try:
            with websocket.app.state.live_gate:
                await _answer_frames(websocket)
        except Overloaded as exc:  # the gate's: too many live connections already
            await websocket.send_json({"error": str(exc), "busy": True})
            await websocket.close(code=1013, reason="server busy")


async def _answer_frames(websocket: WebSocket) -> None:
    """Answer the connection's frames, one at a time, until it closes or stays silent too long."""
    settings = websocket.app.state.settings
    pool = websocket.app.state.pool
    source = PushSource("live page")
    pipeline = Pipeline(None, fps=source.info.fps, name=source.info.name)
    try:
        while True:
            try:
                async with asyncio.timeout(settings.frame_timeout_s):
                    message = await websocket.receive()
            except TimeoutError:
                await websocket.close(code=1001, reason=f"no frame for {settings.frame_timeout_s:g} s")
                break
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            if not frame:
                await websocket.send_json({"error": "send each frame as a binary message of JPEG, PNG or WebP bytes"})
                continue
            if len(frame) > settings.max_upload_bytes:
                await websocket.send_json({"error": f"frame of {len(frame):,} bytes exceeds the upload limit"})
                continue
            try:
                admission = pool.admit()
            except Overloaded as exc:
                await websocket.send_json({"error": str(exc), "busy": True})
                continue
            started = time.perf_counter()
            try:
                with admission:
                    shape, faces = await pool.run(analyze_live_frame, source, pipeline, frame, settings.max_pixels)
            except ImageError as exc:
                await websocket.send_json({"error": file_error(0, "frame", exc).reason})
                continue
            answer = LiveFrame.from_faces(shape, faces, time.perf_counter() - started)
            await websocket.send_text(answer.model_dump_json())
    finally:
        source.close()
