"""``WS /api/v1/live``: camera frames in, faces out, one frame in flight per connection.

The page sends each frame as one binary message (JPEG/PNG/WebP bytes) and waits for the JSON
answer before sending the next, so a slow server lowers the frame rate instead of building a
backlog. Each connection has its own ``FaceTracker`` so faces keep their ``track_id`` across
frames. Frames are decoded in memory and never stored, even when the operator enabled saving.
A connection that sends nothing for ``frame_timeout_s`` is closed, so idle sockets do not pile up.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from moodlens.recognition.imageio import ImageError
from moodlens.recognition.track import FaceTracker
from moodlens.web.deps import Overloaded
from moodlens.web.routers.analyze import analyze_bytes, file_error
from moodlens.web.schemas import LiveFrame

router = APIRouter(tags=["live"])


@router.websocket("/api/v1/live")
async def live(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    pool = websocket.app.state.pool
    tracker = FaceTracker()
    await websocket.accept()
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
                    image, faces = await pool.run(analyze_bytes, "frame", frame, settings.max_pixels)
            except ImageError as exc:
                await websocket.send_json({"error": file_error(0, "frame", exc).reason})
                continue
            answer = LiveFrame.from_faces(image.shape, tracker.update(faces), time.perf_counter() - started)
            await websocket.send_text(answer.model_dump_json())
    except WebSocketDisconnect:
        pass
