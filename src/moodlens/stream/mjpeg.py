"""A real MJPEG-over-HTTP camera made of given frames: a threaded ``http.server`` writing
``multipart/x-mixed-replace`` JPEG frames, which OpenCV's FFmpeg backend (and so ``--camera URL``) reads like an
IP camera. For demos and checks of live ingests without a camera (``moodlens.distributed.fleet_check``).

It can drop the connection after given frames and refuse connections for a while (a camera that
reboots), then go on from the next frame; and it can pace frames at a frame rate.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2


def video_jpegs(path: Path, quality: int = 95) -> list[bytes]:
    """Every frame of a video file as JPEG bytes."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        out.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    cap.release()
    return out

class MjpegServer:
    """Serves ``frames`` (JPEG bytes) once, in order, to whoever connects to :attr:`url`.

    ``fps``: pace frames (0: as fast as the client reads). ``drop_after``: frame counts after which the
    connection is cut; the server then refuses connections for ``down_s`` seconds and afterwards goes
    on with the next frame. After the last frame the connection closes and new ones are refused.
    ``host``: the address to listen on (another machine's workers need one they can reach).
    """

    def __init__(self, frames: list[bytes], fps: float = 0.0, drop_after: tuple[int, ...] = (),
                 down_s: float = 0.0, host: str = "127.0.0.1") -> None:
        self.frames, self.fps = frames, fps
        self.drop_after, self.down_s = set(drop_after), down_s
        self.sent = 0
        self.connections = 0
        self._down_until = 0.0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.serve(self)

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/stream.mjpg"

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            if time.monotonic() < self._down_until or self.sent >= len(self.frames):
                handler.close_connection = True
                return  # no answer at all: like a camera that is rebooting or gone
            self.connections += 1
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        try:
            while self.sent < len(self.frames):
                jpeg = self.frames[self.sent]
                handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                    + jpeg + b"\r\n")
                handler.wfile.flush()
                self.sent += 1
                if self.sent in self.drop_after:
                    self.drop_after.discard(self.sent)
                    self._down_until = time.monotonic() + self.down_s
                    break
                if self.fps:
                    time.sleep(1.0 / self.fps)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
