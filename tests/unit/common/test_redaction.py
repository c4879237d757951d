"""Secrets never leave the unit: config replies, `config check`, health events, logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.config.settings import load_settings
from gateway.logs import setup_logging
from gateway.redaction import redact, redact_text
from tests.support.transport import write_config

CAMERA_URL = "rtsp://admin:cam-s3cret@192.0.2.7:554/stream1"
SECRETS = ("cam-s3cret", "mqtt-s3cret-pw", "influx-t0ken")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CAMERA_URL, "rtsp://admin:***@192.0.2.7:554/stream1"),
        ("open failed: rtsp://u:p@h/x (timeout)", "open failed: rtsp://u:***@h/x (timeout)"),
        ("http://user:pa:ss@h/", "http://user:***@h/"),
        ("rtsp://cam/stream", "rtsp://cam/stream"),  # no credentials: unchanged
        ("rtsp://admin@cam/stream", "rtsp://admin@cam/stream"),  # user only: unchanged
        ("two rtsp://a:b@h1 and https://c:d@h2/", "two rtsp://a:***@h1 and https://c:***@h2/"),
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_named_values_are_masked() -> None:
    assert redact({"token": "x", "mqtt": {"password": "y", "host": "h"}, "n": [CAMERA_URL]}) == {
        "token": "**********",
        "mqtt": {"password": "**********", "host": "h"},
        "n": ["rtsp://admin:***@192.0.2.7:554/stream1"],
    }


def secret_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        1883,
        mqtt={"username": "rsu", "password": "mqtt-s3cret-pw"},
        ingest={"influx": {"token": "influx-t0ken"}},
        cameras=[{"id": "gate", "enabled": False, "source": {"type": "url", "url": CAMERA_URL}}],
    )


@pytest.mark.parametrize("as_json", [False, True])
def test_config_check_prints_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    args = ["config", "check", str(secret_config(tmp_path))] + (["--json"] if as_json else [])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rtsp://admin:***@192.0.2.7" in out
    for secret in SECRETS:
        assert secret not in out


def test_logs_carry_no_url_password(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging("info", "text")
    try:
        logging.getLogger("gateway.test").warning("camera %s failed", CAMERA_URL)
        logging.getLogger("gateway.test").warning("plain %s", "rtsp://x:y@h")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "cam-s3cret" not in err and "x:y@" not in err
    assert "rtsp://admin:***@192.0.2.7" in err


class _FailingCamera:
    def health(self) -> Any:
        raise RuntimeError(f"cannot open {CAMERA_URL}: 401")

    def latest_frame(self) -> None:
        return None

    def restart(self) -> None:
        pass

    def stop(self) -> None:
        pass


def test_health_events_carry_no_url_password(tmp_path: Path) -> None:
    app = App(load_settings(secret_config(tmp_path)))
    try:
        app.cameras["gate"] = _FailingCamera()  # type: ignore[assignment]
        draft = app.health_draft()
    finally:
        app.stop()
    text = repr(draft.data)
    assert "cam-s3cret" not in text
    assert (
        "rtsp://admin:***@192.0.2.7:554/stream1: 401" in draft.data["cameras"]["gate"]["last_error"]
    )
