"""The console's parts on their own: passwords, sessions, login back-off, users file, views."""

from __future__ import annotations

import io
import logging
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.cli import main
from gateway.config.console import ConsoleConfig
from gateway.config.settings import validate_settings
from gateway.console.cameras import edit_patch, page_problems
from gateway.console.passwords import hash_password, verify_password, weak_password
from gateway.console.sessions import LoginLimiter, SessionStore
from gateway.console.users_file import set_user
from gateway.console.views import LiveViews
from gateway.errors import ConfigError, InputError
from gateway.logs import LogRing
from gateway.redaction import redact_settings
from gateway.sources.frame import Frame
from gateway.vision.detections import Detections


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """``main()`` puts a handler on the test's captured stderr: take it off afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- passwords ---------------------------------------------------------------------------

HASH = hash_password("a good long password")


@pytest.mark.parametrize(
    ("password", "stored", "ok"),
    [
        ("a good long password", HASH, True),
        ("a good long passwore", HASH, False),
        ("", HASH, False),
        ("a good long password", "not a hash", False),
        ("a good long password", "scrypt$3$8$1$AAAA$AAAA", False),  # n not a power of two
        ("a good long password", "scrypt$1048576$64$1$AAAA$AAAA", False),  # 8 GiB: refused
        ("a good long password", "md5$1$1$1$AAAA$AAAA", False),
        ("a good long password", HASH.replace("scrypt", "bcrypt"), False),
    ],
    # The salted hash differs per process: ids that do not show it keep the collection
    # the same in every worker (pytest-xdist compares them).
    ids=["right", "one-letter-off", "empty", "not-a-hash", "n-not-power-of-two",
         "8-GiB-parameters", "unknown-scheme", "other-scheme-same-fields"],
)  # fmt: skip
def test_verify_password(password: str, stored: str, ok: bool) -> None:
    assert verify_password(password, stored) is ok


def test_hashes_are_salted() -> None:
    assert hash_password("same password!") != hash_password("same password!")


@pytest.mark.parametrize(
    ("password", "weak"), [("short", True), ("aaaaaaaaaaaa", True), ("ten chars!", False)]
)
def test_weak_passwords(password: str, weak: bool) -> None:
    assert (weak_password(password) is not None) is weak


# -- sessions ----------------------------------------------------------------------------


def test_sessions_end_when_idle_or_too_old() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=4, idle_s=60, max_s=300, clock=clock)
    session = store.create("crew", "admin")
    clock.now += 59
    assert store.get(session.token) is session  # used: its idle time restarts
    clock.now += 59
    assert store.get(session.token) is session
    clock.now += 61
    assert store.get(session.token) is None  # idle too long
    other = store.create("crew", "admin")
    for _ in range(11):  # kept busy, still ends at max_s
        clock.now += 30
        store.get(other.token)
    assert store.get(other.token) is None
    assert store.get("") is None
    assert store.get("guessed-token") is None


def test_sessions_are_bounded_least_recently_used_first() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=3, idle_s=60, max_s=300, clock=clock)
    first, second, third = (store.create(f"u{i}", "admin") for i in range(3))
    store.get(first.token)  # first is now the most recently used
    fourth = store.create("u3", "read-only")
    assert len(store) == 3
    assert store.get(second.token) is None
    assert all(store.get(s.token) is s for s in (first, third, fourth))
    assert store.evicted == 1
    for i in range(1000):
        store.create(f"flood{i}", "read-only")
    assert len(store) == 3


def test_csrf_compare() -> None:
    session = SessionStore(max_sessions=1, idle_s=1, max_s=1).create("crew", "admin")
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.token)


# -- login back-off ----------------------------------------------------------------------


def test_login_back_off_doubles_and_is_forgotten() -> None:
    clock = Clock()
    limiter = LoginLimiter(free=3, base_s=1.0, max_s=8.0, forget_s=100.0, clock=clock)
    waits = [limiter.failed("10.0.0.9") for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    assert limiter.wait_s("10.0.0.9") == 8.0
    assert limiter.wait_s("10.0.0.10") == 0.0  # other clients are not slowed
    clock.now += 8.0
    assert limiter.wait_s("10.0.0.9") == 0.0
    assert limiter.failed("10.0.0.9") == 8.0  # still capped, still counted
    clock.now += 200.0
    assert limiter.wait_s("10.0.0.9") == 0.0
    assert len(limiter) == 0  # forgotten after forget_s
    limiter.failed("a")
    limiter.succeeded("a")
    assert len(limiter) == 0


def test_login_back_off_table_is_bounded() -> None:
    limiter = LoginLimiter(max_clients=50, clock=Clock())
    for i in range(5000):
        limiter.failed(f"client-{i}")
    assert len(limiter) == 50


# -- config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("console", "problem"),
    [
        ({"enabled": True}, "refuses to start without one"),
        ({"tls_cert": "/etc/cert.pem"}, "tls_cert and tls_key go together"),
        ({"users": {"crew": {"password_hash": "hunter2"}}}, "not a hash written by the gateway"),
        ({"users": {"bad name": {"password_hash": HASH}}}, "bad user name"),
        ({"users": {"crew": {"password_hash": HASH, "role": "root"}}}, "role"),
        ({"port": 70000}, "port"),
        ({"view_fps": 0}, "view_fps"),
        ({"extra": 1}, "unknown key"),
    ],
)
def test_bad_console_config(console: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings({"console": console})
    assert any(line.startswith("console") and problem in line for line in info.value.problems)


def test_console_is_off_by_default() -> None:
    assert validate_settings({}).console == ConsoleConfig()
    assert not ConsoleConfig().enabled


def test_password_hashes_are_redacted() -> None:
    settings = validate_settings({"console": {"users": {"crew": {"password_hash": HASH}}}})
    shown = redact_settings(settings)
    assert shown["console"]["users"]["crew"]["password_hash"] == "**********"
    assert HASH not in str(shown)


def test_run_refuses_a_console_without_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.toml"
    path.write_text(f'[gateway]\ndata_dir = "{tmp_path}"\n[console]\nenabled = true\n')
    assert main(["run", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "console: " in err and "gateway console passwd" in err
    assert "Traceback" not in err
    assert not (tmp_path / "outbox.sqlite3").exists()  # refused before anything started


# -- the users file ----------------------------------------------------------------------

COMMENTED = """# the crew's notes
[gateway]
id = "rsu-1"   # pole 17

[console]
enabled = true
"""


def test_set_user_keeps_comments_and_replaces_in_place(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(COMMENTED)
    first = set_user(path, "crew", HASH, None)
    assert first.created and first.kept_layout and first.role == "admin"
    text = path.read_text()
    assert text.startswith(COMMENTED) and "# pole 17" in text
    second_hash = hash_password("another long one")
    second = set_user(path, "crew", second_hash, "read-only")
    assert not second.created and second.kept_layout
    data = tomllib.loads(path.read_text())
    assert data["console"]["users"] == {"crew": {"role": "read-only", "password_hash": second_hash}}
    assert path.read_text().count("[console.users.crew]") == 1
    assert "# the crew's notes" in path.read_text()
    third = set_user(path, "crew", HASH, None)  # an existing user keeps the role
    assert third.role == "read-only"


def test_set_user_with_inline_users_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text('[console]\nusers = { old = { password_hash = "' + HASH + '" } }\n')
    written = set_user(path, "crew", HASH, "admin")
    assert not written.kept_layout
    assert set(tomllib.loads(path.read_text())["console"]["users"]) == {"old", "crew"}


def test_set_user_refuses_an_invalid_file_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[mqtt]\nport = 99999\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        set_user(path, "crew", HASH, None)
    assert "mqtt.port" in " ".join(info.value.problems)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "stdin", "code", "text"),
    [
        (["--user", "crew"], "a fine long password\n", 0, "added console user crew (admin)"),
        (["--user", "crew"], "short\n", 2, "too short"),
        (["--user", "no spaces please"], "a fine long password\n", 2, "bad user name"),
    ],
)
def test_passwd_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    stdin: str,
    code: int,
    text: str,
) -> None:
    path = tmp_path / "g.toml"
    path.write_text(COMMENTED)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["console", "passwd", "-c", str(path), "--password-stdin", *args]) == code
    out = capsys.readouterr()
    assert text in out.out + out.err
    if code == 0:
        stored = tomllib.loads(path.read_text())["console"]["users"]["crew"]["password_hash"]
        assert verify_password("a fine long password", stored)
        assert "a fine long password" not in path.read_text()
    else:
        assert path.read_text() == COMMENTED


def test_passwd_on_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a fine long password\n"))
    missing = tmp_path / "none.toml"
    assert main(["console", "passwd", "-c", str(missing), "--password-stdin"]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert not missing.exists()


# -- the page's edits and errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "JSON object"),
        ({}, "JSON object"),
        ({"source": {"type": "url", "url": "rtsp://x"}}, "only lines, zones, speed"),
        ({"lines": "a line"}, "must be a list"),
        ({"lines": [1]}, "must be an object"),
        ({"lines": [{"id": "a"}] * 65}, "at most 64"),
        ({"zones": [{"id": "z", "points": [[0, 0]] * 65}]}, "at most 64 points"),
        ({"speed": [1, 2]}, "object or null"),
    ],
)
def test_edit_patch_refuses(body: Any, error: str) -> None:
    with pytest.raises(InputError, match=error):
        edit_patch(body)


def test_edit_patch_drops_nulls_and_keeps_speed_deletion() -> None:
    patch = edit_patch(
        {"lines": [{"id": "a", "points": [[0, 0], [1, 1]], "one_way": None}], "speed": None}
    )
    assert patch == {"lines": [{"id": "a", "points": [[0, 0], [1, 1]]}], "speed": None}


def test_page_problems_point_at_the_page_fields() -> None:
    problems = [
        "cameras[1].lines[0].id: String should match pattern '^[A-Za-z0-9_.-]{1,64}$'",
        "cameras[1].speed.world_points[2][0]: Input should be a valid number, unable to parse",
        "cameras[1]: lines: duplicate id a",
        "rules[0].trigger.line: camera 'cam' has no line 'a'",
        "something without a path",
    ]
    assert page_problems(problems, 1) == [
        {
            "path": "lines[0].id",
            "message": "use 1 to 64 letters, digits, '_', '.' or '-' (no spaces)",
        },
        {"path": "speed.world_points[2][0]", "message": "must be a number"},
        {"path": "", "message": "lines: duplicate id a"},
        {"path": "", "message": "rules[0].trigger.line: camera 'cam' has no line 'a'"},
        {"path": "", "message": "something without a path"},
    ]


# -- the live view's encoding ------------------------------------------------------------


class FakeRunner:
    labels = ("car",)

    def __init__(self) -> None:
        self.index = 0
        self.calls = 0

    def latest(self) -> tuple[Frame, Detections] | None:
        self.calls += 1
        image = np.zeros((90, 160, 3), dtype=np.uint8)
        return Frame(image, self.index, 1.0, 0.0), Detections.empty()


def test_frames_are_encoded_only_when_asked_and_at_most_max_fps() -> None:
    clock = Clock()
    views = LiveViews(max_fps=4.0, max_width=640, clock=clock)
    runner = FakeRunner()
    assert views.encodes == 0 and runner.calls == 0  # nobody watches: nothing is done
    first = views.frame("cam", runner)  # type: ignore[arg-type]
    assert first is not None and first.jpeg[:2] == b"\xff\xd8" and views.encodes == 1
    for _ in range(50):  # many viewers within one interval share one encoding
        runner.index += 1
        assert views.frame("cam", runner) is first  # type: ignore[arg-type]
    assert views.encodes == 1
    clock.now += 0.25
    second = views.frame("cam", runner)  # type: ignore[arg-type]
    assert second is not None and second.index == runner.index and views.encodes == 2
    clock.now += 1.0  # a still camera (same frame): not encoded again
    assert views.frame("cam", runner) is second  # type: ignore[arg-type]
    assert views.encodes == 2


def test_log_ring_is_bounded_and_redacted() -> None:
    ring = LogRing(size=5)
    logger = logging.getLogger("test.console.ring")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        for i in range(20):
            logger.info("line %d rtsp://admin:s3cret@10.0.0.5/stream", i)
    finally:
        logger.removeHandler(ring)
    lines = ring.tail()
    assert [seq for seq, _ in lines] == [16, 17, 18, 19, 20]
    assert all("s3cret" not in text and "admin:***@" in text for _, text in lines)
    assert ring.tail(after=19) == lines[-1:]


# -- a console edit and a remote set_config at the same time -------------------------------


def test_camera_edits_and_merge_patches_at_once_lose_nothing(tmp_path: Path) -> None:
    """Each change is computed from the file inside the one lock: none undoes another."""
    import threading

    from gateway.config.patch import to_toml
    from gateway.runtime.live_settings import CameraEdit, LiveSettings, MergePatch

    data = {
        "gateway": {"data_dir": str(tmp_path)},
        "cameras": [
            {"id": "a", "source": {"type": "simulator"}},
            {"id": "b", "source": {"type": "url", "url": "rtsp://u:pw@127.0.0.1:9/x"}},
        ],
    }
    path = tmp_path / "g.toml"
    path.write_text(to_toml(data))
    live = LiveSettings(validate_settings(data), path, lambda camera: None)
    errors: list[BaseException] = []

    def edits(n: int) -> None:
        try:
            for i in range(n):
                line = {"id": f"l{i}", "points": [[0.1, 0.1], [0.9, 0.9]]}
                live.apply_settings(CameraEdit("a", {"lines": [line]}))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def patches(n: int) -> None:
        try:
            for i in range(n):
                live.apply_settings(MergePatch({"events": {"health_interval_s": 10 + i}}))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=edits, args=(20,)),
        threading.Thread(target=patches, args=(20,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    final = tomllib.loads(path.read_text())
    assert final["cameras"][0]["lines"] == [{"id": "l19", "points": [[0.1, 0.1], [0.9, 0.9]]}]
    assert final["events"]["health_interval_s"] == 29
    assert final["cameras"][1]["source"]["url"] == "rtsp://u:pw@127.0.0.1:9/x"  # never touched


@pytest.mark.parametrize(
    ("camera", "patch", "error"),
    [
        ("nope", {"lines": []}, "has no camera 'nope'"),
        ("a", {"id": "b"}, "cannot change its id"),
        ("a", {"lines": [{"id": "x", "points": [[0, 0], [2000, 10]]}]}, "invalid setting"),
    ],
)
def test_bad_camera_edits_change_nothing(
    tmp_path: Path, camera: str, patch: dict[str, Any], error: str
) -> None:
    from gateway.config.patch import to_toml
    from gateway.runtime.live_settings import CameraEdit, LiveSettings

    data = {
        "gateway": {"data_dir": str(tmp_path)},
        "cameras": [{"id": "a", "source": {"type": "simulator"}}],
    }
    path = tmp_path / "g.toml"
    path.write_text(to_toml(data))
    before = path.read_bytes()
    live = LiveSettings(validate_settings(data), path, lambda camera: None)
    with pytest.raises(ConfigError, match=error):
        live.apply_settings(CameraEdit(camera, patch))
    assert path.read_bytes() == before
