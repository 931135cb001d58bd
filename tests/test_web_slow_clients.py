"""Slow and stalled clients cannot lock anyone out: real sockets against a real uvicorn server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import httpx
import skimage.data
from live_server import free_port, running
from web_access import OPERATOR, OPERATOR_TOKEN
from websockets.sync.client import connect

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
ASTRONAUT = cv2.imencode(".jpg", skimage.data.astronaut()[:, :, ::-1])[1].tobytes()
STALLED = 20
READ_TIMEOUT_S, BODY_TIMEOUT_S, FRAME_TIMEOUT_S = 6.0, 12.0, 3.0
SERVER = ("import uvicorn; from moodlens.web import create_app; from moodlens.web.auth import Access; "
          "uvicorn.run(create_app(workers=1, max_queue=2, read_timeout_s={read}, body_timeout_s={body}, "
          "frame_timeout_s={frame}, access=Access.create()), host='127.0.0.1', port={port}, log_level='warning')")


def stalled_upload(port: int) -> socket.socket:
    """A client that sends the headers and 1 KB of a 500 KB upload, then nothing more."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 500000\r\n\r\n")
    part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.jpg"\r\n\r\n'
    sock.sendall(head.encode() + part + ASTRONAUT[:1000])
    return sock


def status_line(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[0].decode()


def answered(sock: socket.socket) -> bool:
    """True once the server has sent something on ``sock`` (without waiting or consuming it)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)) or True
    except BlockingIOError:
        return False


def trickle(port: int, answers: list[str]) -> None:
    """A client that sends a byte every second, never stalling long enough for the read timeout."""
    sock = stalled_upload(port)
    try:
        for _ in range(int(BODY_TIMEOUT_S) + 4):
            time.sleep(1)
            sock.sendall(b"x")
    except OSError:
        pass  # the server answered and closed the connection
    answers.append(status_line(sock, 5))
    sock.close()


def test_stalled_uploads_do_not_lock_out_other_clients():
    port = free_port()
    code = SERVER.format(read=READ_TIMEOUT_S, body=BODY_TIMEOUT_S, frame=FRAME_TIMEOUT_S, port=port)
    with running([sys.executable, "-c", code], port) as url:
        stalled = [stalled_upload(port) for _ in range(STALLED)]  # more than workers + queue (3)
        trickled: list[str] = []
        trickler = threading.Thread(target=trickle, args=(port, trickled))
        trickler.start()
        started = time.monotonic()
        try:
            time.sleep(0.5)
            with httpx.Client(base_url=url, headers=OPERATOR, timeout=30) as client:
                health = client.get("/healthz").json()
                assert health["in_flight"] == 0  # the stalled bodies hold no analysis slot
                for _ in range(3):
                    r = client.post("/api/v1/analyze", files=[("files", ("a.jpg", ASTRONAUT, "image/jpeg"))])
                    assert r.status_code == 200 and len(r.json()["images"][0]["faces"]) == 1
            with connect(url.replace("http", "ws") + "/api/v1/live", additional_headers=AUTH) as ws:
                ws.send(ASTRONAUT)
                assert len(json.loads(ws.recv(timeout=30))["faces"]) == 1
            # All of that was answered while every stalled upload was still waiting for its answer.
            assert not any(map(answered, stalled)), "the checks above must run while the uploads stall"
            assert time.monotonic() - started < READ_TIMEOUT_S

            # Then every stalled upload is answered 408 once its read timeout has passed.
            answers = [status_line(sock, READ_TIMEOUT_S + 10) for sock in stalled]
            assert answers == ["HTTP/1.1 408 Request Timeout"] * STALLED
        finally:
            for sock in stalled:
                sock.close()
            trickler.join(BODY_TIMEOUT_S + 20)
        # The trickling client never stalled for the read timeout, but its body took too long in all.
        assert trickled == ["HTTP/1.1 408 Request Timeout"]


def test_silent_websockets_are_closed():
    port = free_port()
    code = SERVER.format(read=READ_TIMEOUT_S, body=BODY_TIMEOUT_S, frame=FRAME_TIMEOUT_S, port=port)
    with running([sys.executable, "-c", code], port) as url, connect(
            url.replace("http", "ws") + "/api/v1/live", additional_headers=AUTH, ping_interval=None) as ws:
        started = time.monotonic()
        ws.send(ASTRONAUT[:100])  # half a frame's worth of JPEG: an error answer, then nothing more is sent
        assert "error" in json.loads(ws.recv(timeout=30))
        try:
            ws.recv(timeout=FRAME_TIMEOUT_S + 10)
            raise AssertionError("the server sent a message instead of closing")
        except Exception as exc:  # noqa: BLE001 - websockets raises ConnectionClosed* subclasses
            assert "1001" in str(exc), exc
        assert FRAME_TIMEOUT_S - 0.5 < time.monotonic() - started < FRAME_TIMEOUT_S + 10


def test_load_benchmark_signs_in_and_counts_503s(tmp_path):
    """``benchmarks/bench_api.py`` at a small size: a real server with sign-in, every request answered or 503."""
    out = tmp_path / "bench.json"
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_api.py"
    proc = subprocess.run([sys.executable, str(bench), "--requests", "4", "--concurrency", "1", "3", "--warmup", "0",
                           "--workers", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "sign-in on (bearer token)" in proc.stdout and "503" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["clients"] for r in rows] == [1, 3]
    assert all(r["failed"] == 0 and r["answered"] + r["busy_503"] == 4 and r["answered"] > 0 for r in rows)
