"""One console viewer for ``gateway bench console``: what the page does while a crew watches.

    python -m gateway.bench.console_viewer PORT CAMERA FPS < password

Logs in as ``bench``, then, on one kept-alive connection like a browser's, fetches the
camera's frame ``FPS`` times a second and its live state once a second until SIGTERM;
then prints one JSON line (requests, frames received, distinct frames, errors). It runs
as its own process: on a unit the viewer is a laptop, not a thread of the gateway.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
import time


def main() -> None:
    """Watch until SIGTERM, then print the counters."""
    port, camera, fps = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    password = sys.stdin.readline().strip()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/api/login",
        json.dumps({"user": "bench", "password": password}),
        {"Content-Type": "application/json"},
    )
    response = conn.getresponse()
    response.read()
    cookie = (response.getheader("set-cookie") or "").split(";", 1)[0]
    counts = {"frames": 0, "live": 0, "errors": 0, "bytes": 0}
    seen: set[str] = set()
    next_live = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        try:
            conn.request("GET", f"/api/cameras/{camera}/frame.jpg", headers={"Cookie": cookie})
            reply = conn.getresponse()
            body = reply.read()
            if reply.status == 200:
                counts["frames"] += 1
                counts["bytes"] += len(body)
                seen.add(reply.getheader("x-frame-index") or "")
            else:
                counts["errors"] += 1
            if started >= next_live:
                next_live = started + 1.0
                conn.request("GET", f"/api/cameras/{camera}/live", headers={"Cookie": cookie})
                live = conn.getresponse()
                live.read()
                counts["live" if live.status == 200 else "errors"] += 1
        except (OSError, http.client.HTTPException):
            counts["errors"] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        stop.wait(max(0.0, 1.0 / fps - (time.monotonic() - started)))
    print(json.dumps({**counts, "distinct_frames": len(seen)}), flush=True)


if __name__ == "__main__":
    main()
