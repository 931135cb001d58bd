"""Load figure for ``POST /api/v1/analyze``: requests/s, p50/p95 latency and 503s at 1, 8 and 32 clients.

Starts ``moodlens serve`` on 127.0.0.1 (a free port, loopback only) in a subprocess with sign-in on
(a token generated here, sent as ``Authorization: Bearer``), sends a bounded number of requests with one
640x480 one-face JPEG each, checks every answer, counts the 503s of a full server (not retried), and
prints the numbers with the facts of the machine they were measured on.

    python benchmarks/bench_api.py                      # 1, 8 and 32 clients, 64 requests each
    python benchmarks/bench_api.py --requests 80 --concurrency 1 2 8 --workers 2
    python benchmarks/bench_api.py --no-auth            # the same without sign-in, to see what it costs
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
from machine import machine_facts
from skimage import data

#: The packages that set the server's speed, printed with the machine.
PACKAGES = ("numpy", "onnxruntime", "opencv-python-headless", "fastapi", "uvicorn")


def one_face_photo() -> bytes:
    """The astronaut (one smiling face) on a 640x480 canvas, as a JPEG."""
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[:, 80:560] = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (480, 480))
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int | None, token: str, sign_in: bool = True) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from moodlens.cli import app; app()", "serve", "--host", "127.0.0.1",
           "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    if not sign_in:
        cmd.append("--no-auth")
    env = {**os.environ, "MOODLENS_TOKEN": token}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("server did not start (run the same `moodlens serve` command by hand to see why)")


def run_level(url: str, photo: bytes, clients: int, requests: int, token: str) -> dict[str, float]:
    """``requests`` POSTs spread over ``clients`` threads, each with its own keep-alive connection.

    Latencies and requests/s count answered requests (200 with the face); 503s (server full) are counted
    apart and not retried; anything else is a failure.
    """
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]

    def client(n: int) -> tuple[list[float], int, int]:
        latencies, busy, failures = [], 0, 0
        with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as c:
            for _ in range(n):
                t0 = time.perf_counter()
                r = c.post("/api/v1/analyze", files=[("files", ("photo.jpg", photo, "image/jpeg"))])
                if r.status_code == 503:
                    busy += 1
                elif r.status_code == 200 and len(r.json()["images"][0]["faces"]) == 1:
                    latencies.append(time.perf_counter() - t0)
                else:
                    failures += 1
        return latencies, busy, failures

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, per_client))
    wall = time.perf_counter() - t0
    latencies = sorted(x for lat, _, _ in results for x in lat)
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [latencies[0]] * 99
    return {"clients": clients, "requests": requests, "answered": len(latencies),
            "busy_503": sum(b for _, b, _ in results), "failed": sum(f for _, _, f in results),
            "req_per_s": len(latencies) / wall, "p50_ms": 1000 * q[49], "p95_ms": 1000 * q[94]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients")
    parser.add_argument("--workers", type=int, default=None, help="server --workers (default: its own default)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured requests first")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-auth", action="store_true", help="serve without sign-in (loopback only)")
    args = parser.parse_args()

    facts = machine_facts(PACKAGES)  # load average before the run: other processes compete for the same cores
    photo = one_face_photo()
    port = free_port()
    token = secrets.token_urlsafe(24)
    server = start_server(port, args.workers, token, sign_in=not args.no_auth)
    url = f"http://127.0.0.1:{port}"
    try:
        model = httpx.get(f"{url}/api/v1/model", headers={"Authorization": f"Bearer {token}"}).json()
        capacity = httpx.get(f"{url}/healthz").json()["capacity"]
        if args.warmup:
            run_level(url, photo, 1, args.warmup, token)
        rows = [run_level(url, photo, c, args.requests, token) for c in args.concurrency]
    finally:
        server.terminate()
        server.wait(10)

    print("moodlens API load test: POST /api/v1/analyze, one 640x480 JPEG "
          f"({len(photo) / 1024:.0f} KB, 1 face) per request, loopback, "
          + ("sign-in off (--no-auth)" if args.no_auth else "sign-in on (bearer token)"))
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print(f"  load average after the run: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"  server: workers={args.workers or 'default'}, capacity={capacity}, detector={model['detector']}, "
          f"model={model['name']} ({model['sha256']})")
    print(f"\n{'clients':>7} {'requests':>8} {'answered':>8} {'503':>5} {'failed':>6} {'req/s':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7}")
    for r in rows:
        print(f"{r['clients']:>7} {r['requests']:>8} {r['answered']:>8} {r['busy_503']:>5} {r['failed']:>6} "
              f"{r['req_per_s']:>7.1f} {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "capacity": capacity, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
