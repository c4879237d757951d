"""The console of a real ``gateway run``, from a plain HTTP client: what is refused, what is saved.

One gateway for the module (the simulated camera with the demo detector, plus a network
camera whose URL carries a password and that never connects); the console on loopback.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import sqlite3
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from gateway.events.validate import validate_event
from gateway.localservers import free_port
from tests.support.console import (
    ADMIN_PASSWORD,
    ROAD_LINE,
    VIEWER,
    VIEWER_PASSWORD,
    Client,
    Gateway,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "modelzoo" / "demo" / "roadsim.onnx"
SECRET = "s3cret-pw"
GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
SIDEWALK = [[0.0, 0.86], [1.0, 0.86], [1.0, 1.0], [0.0, 1.0]]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("console-http")
    path = write_config(tmp, view_fps=0.5)  # one encoding per 2 s: the cap is visible
    data = tomllib.loads(path.read_text())
    data["cameras"].append(
        {
            "id": "gate",
            "source": {"type": "url", "url": f"rtsp://admin:{SECRET}@127.0.0.1:{free_port()}/x"},
            "reconnect_max_s": 5,
        }
    )
    master, slave = os.openpty()  # a GPS on a serial port: good sentences and some garbage
    data["sensors"] = [{"id": "gps", "protocol": "nmea", "port": os.ttyname(slave)}]
    from gateway.config.patch import to_toml

    path.write_text(to_toml(data))
    stop = threading.Event()

    def feed() -> None:
        while not stop.wait(0.2):
            os.write(master, GGA + GGA.replace(b"*47", b"*00"))

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    gw = Gateway(path).start()
    yield gw
    gw.stop()
    stop.set()
    writer.join(5)
    os.close(master)
    os.close(slave)
    assert SECRET not in gw.log()  # not even in the log


@pytest.fixture
def admin(gateway: Gateway) -> Client:
    client = Client(gateway.port)
    assert client.login().status == 200
    return client


def stored_events(gateway: Gateway, kind: str) -> list[dict[str, Any]]:
    """Events of ``kind`` waiting in the outbox (no broker: nothing left it), schema-checked."""
    db = sqlite3.connect(gateway.path.parent / "data" / "outbox.sqlite3")
    try:
        rows = db.execute("SELECT payload FROM events ORDER BY seq").fetchall()
    finally:
        db.close()
    events = [validate_event(json.loads(row[0])) for row in rows]
    return [e for e in events if e["type"] == kind]


ROUTES = [
    ("GET", "/api/session"),
    ("GET", "/api/cameras"),
    ("GET", "/api/cameras/cam/live"),
    ("GET", "/api/cameras/cam/frame.jpg"),
    ("POST", "/api/cameras/cam/geometry"),
    ("POST", "/api/cameras/cam/restart"),
    ("GET", "/api/status"),
    ("GET", "/api/config"),
    ("GET", "/api/logs"),
    ("GET", "/api/models"),
    ("POST", "/api/models/verify"),
    ("PUT", "/api/models/evil"),
    ("GET", "/api/doctor"),
    ("POST", "/api/doctor"),
    ("POST", "/api/logout"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_nothing_without_a_session(gateway: Gateway, method: str, path: str) -> None:
    client = Client(gateway.port)
    for cookie in ({}, {"gw_session": "forged-token"}):
        client.cookies = dict(cookie)
        reply = client.request(method, path, json_body={"lines": []}, headers={"X-CSRF-Token": "x"})
        assert reply.status == 401, reply.body
        assert reply.headers["content-type"] == "application/json"


def test_the_page_is_served_with_strict_headers(gateway: Gateway) -> None:
    client = Client(gateway.port)
    page = client.request("GET", "/")
    assert page.status == 200 and b"Local console" in page.body
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    for asset in ("/static/console.js", "/static/console.css"):
        assert client.request("GET", asset).status == 200
    assert client.request("GET", "/static/../web.py").status == 404


def test_login_cookie_is_httponly_and_strict(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    body = json.dumps({"user": "crew", "password": ADMIN_PASSWORD})
    conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    cookie = response.getheader("set-cookie") or ""
    conn.close()
    assert response.status == 200
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert "httponly" in parts and "samesite=strict" in parts and "path=/" in parts
    assert "secure" not in parts  # plain HTTP here (TLS adds it)


@pytest.mark.parametrize(
    ("headers", "csrf"),
    [
        ({}, False),  # no token
        ({"X-CSRF-Token": "not-the-token"}, False),
        ({"Origin": "http://evil.example"}, True),  # right token, another site
    ],
)
def test_a_change_without_csrf_is_refused(
    gateway: Gateway, admin: Client, headers: dict[str, str], csrf: bool
) -> None:
    before = gateway.path.read_bytes()
    reply = admin.request(
        "POST",
        "/api/cameras/cam/geometry",
        json_body={"lines": [{"id": "x", "points": ROAD_LINE}]},
        headers=headers,
        csrf=csrf,
    )
    assert reply.status == 403
    assert "refused" in reply.json()["error"]
    assert gateway.path.read_bytes() == before


def test_read_only_user_looks_but_cannot_change(gateway: Gateway) -> None:
    viewer = Client(gateway.port)
    session = viewer.login(VIEWER, VIEWER_PASSWORD)
    assert session.status == 200 and session.json()["role"] == "read-only"
    assert viewer.request("GET", "/api/cameras/cam/live").status == 200
    before = gateway.path.read_bytes()
    for method, path in [
        ("POST", "/api/cameras/cam/geometry"),
        ("POST", "/api/cameras/cam/restart"),
        ("POST", "/api/doctor"),
        ("PUT", "/api/models/x"),
    ]:
        reply = viewer.request(method, path, json_body={"lines": []})
        assert reply.status == 403, (path, reply.body)
        assert "read-only" in reply.json()["error"]
    assert gateway.path.read_bytes() == before
    assert viewer.request("POST", "/api/logout").status == 200  # a viewer may log out


def test_bad_edit_shows_field_errors_and_changes_nothing(gateway: Gateway, admin: Client) -> None:
    before = gateway.path.read_bytes()
    reply = admin.request(
        "POST",
        "/api/cameras/cam/geometry",
        json_body={
            "lines": [{"id": "no spaces", "points": [[0.2, 0.5], [0.2, 0.5]]}],
            "zones": [{"id": "z", "points": [[0.1, 0.1], [0.2, 0.2]]}],
        },
    )
    assert reply.status == 400
    problems = {p["path"]: p["message"] for p in reply.json()["problems"]}
    assert problems == {
        "lines[0].id": "use 1 to 64 letters, digits, '_', '.' or '-' (no spaces)",
        "lines[0].points": "the two points must differ",
        "zones[0].points": "expected at least 3 points, got 2",
    }
    assert gateway.path.read_bytes() == before
    live = admin.request("GET", "/api/cameras/cam/live").json()
    assert [line["id"] for line in live["geometry"]["lines"]] == ["upper"]  # still running
    refused = [a["data"] for a in stored_events(gateway, "command") if not a["data"]["ok"]]
    assert refused[-1]["caller"] == "console:crew" and refused[-1]["command"] == "set_config"
    assert "invalid setting" in refused[-1]["error"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"user=crew&password=x", "application/x-www-form-urlencoded", 415),  # a form post
        (b"{not json", "application/json", 400),
        (b'{"user": 1, "password": []}', "application/json", 400),
        (b'{"user": "crew", "password": "' + b"x" * 300_000 + b'"}', "application/json", 413),
    ],
)
def test_hostile_logins_are_refused(
    gateway: Gateway, body: bytes, content_type: str, status: int
) -> None:
    reply = Client(gateway.port).request(
        "POST", "/api/login", data=body, headers={"Content-Type": content_type}
    )
    assert reply.status == status
    assert "gw_session" not in reply.headers.get("set-cookie", "")


def test_wrong_password_is_rate_limited(gateway: Gateway) -> None:
    guesser = Client(gateway.port, source="127.0.0.2")  # the crew's laptop stays free
    statuses = [guesser.login("crew", f"guess-{i}").status for i in range(4)]
    assert statuses == [401, 401, 401, 401]
    refused = guesser.login("crew", ADMIN_PASSWORD)  # even the right password must wait now
    assert refused.status == 429
    retry = refused.json()["retry_after_s"]
    assert retry >= 1 and refused.headers["retry-after"] == str(retry)
    assert "gw_session" not in guesser.cookies
    assert Client(gateway.port).login().status == 200  # the crew's own laptop is not blocked
    time.sleep(retry + 0.2)
    assert guesser.login("crew", ADMIN_PASSWORD).status == 200


def test_frames_are_jpeg_capped_and_change(gateway: Gateway, admin: Client) -> None:
    def frame() -> tuple[int, np.ndarray[Any, Any]]:
        reply = wait_for(
            lambda: (r := admin.request("GET", "/api/cameras/cam/frame.jpg")).status == 200 and r
        )
        assert reply.headers["content-type"] == "image/jpeg"
        assert reply.headers["cache-control"] == "no-store"
        image = cv2.imdecode(np.frombuffer(reply.body, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (360, 640)
        return int(reply.headers["x-frame-index"]), image

    first, _ = frame()
    again, _ = frame()  # within 1 / view_fps: the same encoding
    assert again == first
    later = wait_for(lambda: (f := frame())[0] != first and f, timeout=30)
    assert later[0] > first
    unknown = admin.request("GET", "/api/cameras/nope/frame.jpg")
    assert unknown.status == 404


def test_status_is_the_health_event_and_shows_no_secret(gateway: Gateway, admin: Client) -> None:
    status = admin.request("GET", "/api/status").json()
    health = status["health"]
    assert set(health) >= {"system", "cameras", "sensors", "outbox", "mqtt", "uptime_s"}
    assert health["cameras"]["cam"]["state"] == "streaming"
    assert health["mqtt"]["state"] != "connected"  # the broker is away: said so
    assert "depth" in health["outbox"] and "dropped" in health["outbox"]
    gps = wait_for(lambda: admin.request("GET", "/api/status").json()["readings"].get("gps"))
    assert gps["protocol"] == "nmea" and abs(gps["values"]["lat"] - 48.1173) < 0.001
    counters = admin.request("GET", "/api/status").json()["health"]["sensors"]["gps"]
    assert counters["good"] > 0 and counters["bad_checksum"] > 0  # the garbage is counted
    gate = wait_for(
        lambda: (
            admin.request("GET", "/api/status")
            .json()["health"]["cameras"]["gate"]
            .get("last_error")
        )
    )
    assert "***@127.0.0.1" in gate
    everything = b"".join(
        admin.request("GET", path).body
        for path in (
            "/api/status",
            "/api/cameras",
            "/api/config",
            "/api/logs",
            "/api/cameras/gate/live",
        )
    )
    assert SECRET.encode() not in everything
    assert b"scrypt$" not in everything  # password hashes are secrets too
    assert b"***@127.0.0.1" in everything


def test_save_writes_the_file_restarts_the_pipeline_and_counts(
    gateway: Gateway, admin: Client
) -> None:
    before = admin.request("GET", "/api/status").json()["health"]["cameras"]["cam"]
    speed = {
        "image_points": [[0.1, 0.55], [0.9, 0.55], [0.95, 0.95], [0.05, 0.95]],
        "world_points": [[0.0, 0.0], [30.0, 0.0], [30.0, 9.0], [0.0, 9.0]],
    }
    edit = {
        "lines": [{"id": "road", "points": ROAD_LINE}],
        "zones": [{"id": "walk", "points": SIDEWALK}],
        "speed": speed,
    }
    reply = admin.request("POST", "/api/cameras/cam/geometry", json_body=edit)
    assert reply.status == 200, reply.body
    assert reply.json()["applied"] == ["cam"] and reply.json()["status"] == "applied"
    saved = tomllib.loads(gateway.path.read_text())
    assert saved["cameras"][0]["lines"] == [{"id": "road", "points": ROAD_LINE}]
    assert saved["cameras"][0]["zones"] == [{"id": "walk", "points": SIDEWALK}]
    assert saved["cameras"][0]["speed"] == speed
    assert saved["cameras"][1]["source"]["url"].startswith("rtsp://admin:" + SECRET)  # kept
    live = admin.request("GET", "/api/cameras/cam/live").json()
    assert list(live["lines"]) == ["road"]
    # the pipeline restarted: its frame counter started again
    assert live["frames"] < before["pipeline_frames"] + 5
    counted = wait_for(
        lambda: sum(
            admin.request("GET", "/api/cameras/cam/live").json()["lines"]["road"][d]
            for d in ("left_to_right", "right_to_left")
        ),
        timeout=90,
    )
    assert counted > 0
    people = wait_for(
        lambda: admin.request("GET", "/api/cameras/cam/live").json()["zones"]["walk"]["inside"],
        timeout=90,
    )
    assert people > 0  # the sidewalk zone sees pedestrians
    audits = stored_events(gateway, "command")
    saves = [a["data"] for a in audits if a["data"].get("camera") == "cam"]
    assert {"command": "set_config", "caller": "console:crew", "role": "admin", "ok": True} in [
        {k: a[k] for k in ("command", "caller", "role", "ok")} for a in saves
    ]
    ok = next(a for a in saves if a["ok"])
    assert ok["signed_at"] is None and ok["nonce"] is None
    assert ok["patch_paths"] == [
        "cameras.cam.lines",
        "cameras.cam.speed.image_points",
        "cameras.cam.speed.world_points",
        "cameras.cam.zones",
    ]


def test_model_import_by_upload(gateway: Gateway, admin: Client) -> None:
    data = DEMO_MODEL.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    wrong = admin.request(
        "PUT", "/api/models/demo", data=data, headers={"X-Expected-SHA256": "0" * 64}
    )
    assert wrong.status == 400 and "checksum mismatch" in wrong.json()["error"]
    assert wrong.json()["sha256"] == sha
    garbage = admin.request("PUT", "/api/models/junk", data=b"not an onnx model" * 100)
    assert garbage.status == 400 and "not imported" in garbage.json()["error"]
    bad_name = admin.request("PUT", "/api/models/..", data=data)
    assert bad_name.status in (400, 404)
    no_csrf = admin.request("PUT", "/api/models/demo", data=data, csrf=False)
    assert no_csrf.status == 403
    assert admin.request("GET", "/api/models").json()["models"] == []
    good = admin.request("PUT", "/api/models/demo", data=data, headers={"X-Expected-SHA256": sha})
    assert good.status == 200, good.body
    assert good.json()["model"]["sha256"] == sha
    listed = admin.request("GET", "/api/models").json()["models"]
    assert [(m["name"], m["sha256"]) for m in listed] == [("demo", sha)]
    store = gateway.path.parent / "data"
    assert not list(store.glob(".console-upload-*"))  # no upload left behind
    admin.request("POST", "/api/models/verify")
    verified = wait_for(
        lambda: (v := admin.request("GET", "/api/models/verify").json())["finished_at"] and v
    )
    assert verified["result"] == [
        {"name": "demo", "ok": True, "detail": verified["result"][0]["detail"]}
    ]
    imports = [
        a["data"]
        for a in stored_events(gateway, "command")
        if a["data"]["command"] == "import_model"
    ]
    assert [i["ok"] for i in imports] == [False, False, True]
    assert {i["model"] for i in imports} == {"demo", "junk"}


def test_doctor_runs_the_safe_checks(gateway: Gateway, admin: Client) -> None:
    assert admin.request("POST", "/api/doctor").status == 200
    report = wait_for(
        lambda: (d := admin.request("GET", "/api/doctor").json())["finished_at"] and d
    )
    checks = {c["check"] for c in report["result"]["checks"]}
    assert checks == {"config", "models", "disk", "clock"}
    assert report["error"] is None


def test_logout_ends_the_session(gateway: Gateway) -> None:
    client = Client(gateway.port)
    client.login()
    token = client.cookies["gw_session"]
    assert client.request("POST", "/api/logout").status == 200
    client.cookies["gw_session"] = token  # the old cookie, replayed
    assert client.request("GET", "/api/session").status == 401


def test_an_upload_cut_off_midway_leaves_nothing(gateway: Gateway, admin: Client) -> None:
    import socket

    head = (
        "PUT /api/models/halfway HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 20000000\r\n"
        f"Cookie: gw_session={admin.cookies['gw_session']}\r\nX-CSRF-Token: {admin.csrf}\r\n\r\n"
    )
    data_dir = gateway.path.parent / "data"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head.encode() + DEMO_MODEL.read_bytes()[:200_000])
        wait_for(lambda: list(data_dir.glob(".console-upload-*/upload.onnx")), timeout=30)
    wait_for(lambda: not list(data_dir.glob(".console-upload-*")), timeout=30)
    names = [m["name"] for m in admin.request("GET", "/api/models").json()["models"]]
    assert "halfway" not in names
    too_big = admin.request(
        "PUT", "/api/models/big", data=b"x", headers={"Content-Length": str(10**12)}
    )
    assert too_big.status == 413


def test_parallel_guesses_do_not_slip_past_the_back_off(gateway: Gateway) -> None:
    """Twenty guesses sent at once from one address: only the free ones are checked."""
    from concurrent.futures import ThreadPoolExecutor

    def guess(i: int) -> int:
        return Client(gateway.port, source="127.0.0.3").login("crew", f"parallel-{i}").status

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(guess, range(20)))
    checked = statuses.count(401)
    assert statuses.count(429) + checked == 20
    assert checked <= 5, statuses  # 3 free + the one that starts the wait (+1 if it expired)
