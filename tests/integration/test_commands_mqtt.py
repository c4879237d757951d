"""Commands over MQTT: correlated replies, config get/set, snapshots, pipeline restarts."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.app import App
from gateway.config.settings import load_settings
from gateway.events.topics import Topics
from gateway.localservers import Mosquitto
from gateway.runtime.commands import CommandHandler
from gateway.runtime.live_settings import ApplyResult
from gateway.security.authorize import UnsignedCommands
from gateway.transport.mqtt import Incoming
from tests.support.transport import Collector, write_config

BASE = "city/sejong-1/rsu-0001"


class Requester:
    """Sends commands with an MQTT v5 response topic and correlation data."""

    def __init__(self, port: int, protocol: int = mqtt.MQTTv5) -> None:
        self.replies: dict[bytes, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.reply_topic = f"test/replies/{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(self.reply_topic, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        key = getattr(msg.properties, "CorrelationData", None) or b"v311"
        with self.cond:
            self.replies[key] = json.loads(msg.payload)
            self.cond.notify_all()

    def call(
        self, name: str, payload: bytes | dict[str, Any] = b"{}", timeout: float = 20
    ) -> dict[str, Any]:
        body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = corr
        self.client.publish(f"{BASE}/cmd/{name}", body, qos=1, properties=props)
        with self.cond:
            assert self.cond.wait_for(lambda: corr in self.replies, timeout), f"no reply to {name}"
            return self.replies.pop(corr)

    def wait_ready(self, timeout: float = 15) -> None:
        """Until the gateway answers: its command subscription may lag its CONNACK."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("get_config", timeout=0.5)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.client._reset_sockets()


@contextlib.contextmanager
def commanded(path: Path, port: int) -> Iterator[tuple[App, Requester]]:
    """The gateway of config ``path`` running, and a requester it answers (both stopped after)."""
    app = App(load_settings(path), path)
    app.start()
    req = Requester(port)
    try:
        app.link.wait_connected(10)
        req.wait_ready()
        yield app, req
    finally:
        req.close()
        app.stop()


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[App, Requester, Path]]:
    path = write_config(tmp_path, mosquitto.port, mqtt={"username": "rsu", "password": "s3cret-pw"})
    with commanded(path, mosquitto.port) as (app, requester):
        yield app, requester, path


def test_get_config_redacts_secrets(gateway: tuple[App, Requester, Path]) -> None:
    _app, req, _path = gateway
    reply = req.call("get_config")
    assert reply["ok"] is True and reply["command"] == "get_config"
    assert reply["result"]["gateway"]["id"] == "rsu-0001"
    assert reply["result"]["mqtt"]["username"] == "rsu"
    assert reply["result"]["mqtt"]["password"] == "**********"
    assert "s3cret-pw" not in json.dumps(reply)


BAD = [
    ("reboot", b"{}", "unknown command 'reboot'"),
    ("get_config", b"{not json", "payload is not JSON"),
    ("get_config", b"[1, 2]", "payload must be a JSON object"),
    ("get_config", b'{"verbose": true}', "unknown argument(s): verbose"),
    ("set_config", b"{}", "argument 'patch'"),
    ("set_config", b'{"patch": [1]}', "argument 'patch'"),
    ("set_config", b'{"patch": {"events": {"health_interval_s": -1}}}', "invalid setting"),
    ("set_config", b'{"patch": {"mqtt": {"no_such_key": 1}}}', "invalid setting"),
    # Not JSON (RFC 8259 has no NaN or Infinity); saved, they made a file that no longer loads.
    ("set_config", b'{"patch": {"events": {"health_interval_s": Infinity}}}', "not JSON"),
    ("set_config", b'{"patch": {"sensors": [{"id": "s", "scale": NaN}]}}', "not JSON"),
    ("snapshot", b'{"camera": "cam-north"}', "snapshots are disabled"),
    ("restart_pipeline", b"{}", "argument 'camera'"),
    ("restart_pipeline", b'{"camera": "cam-x"}', "unknown camera 'cam-x'"),
    ("restart_pipeline", b'{"camera": 7}', "argument 'camera'"),
]


@pytest.mark.parametrize(("name", "payload", "error"), BAD)
def test_bad_commands_get_an_error_and_change_nothing(
    gateway: tuple[App, Requester, Path], name: str, payload: bytes, error: str
) -> None:
    app, req, path = gateway
    before = path.read_bytes()
    settings_before = app.settings.model_dump()
    reply = req.call(name, payload)
    assert reply["ok"] is False and error in reply["error"], reply
    assert path.read_bytes() == before
    assert app.settings.model_dump() == settings_before
    assert req.call("get_config")["ok"] is True  # still serving


def test_invalid_patch_lists_the_problem(gateway: tuple[App, Requester, Path]) -> None:
    _app, req, _path = gateway
    reply = req.call("set_config", {"patch": {"events": {"health_interval_s": 0}}})
    assert reply["ok"] is False
    assert any(p.startswith("events.health_interval_s:") for p in reply["problems"])


def test_set_config_persists_and_reports_restart(gateway: tuple[App, Requester, Path]) -> None:
    app, req, path = gateway
    reply = req.call(
        "set_config",
        {"patch": {"events": {"health_interval_s": 120}, "gateway": {"data_dir": None}}},
    )
    assert reply["ok"] is True, reply
    assert reply["result"]["applied"] == []
    assert sorted(reply["result"]["restart_required"]) == ["events", "gateway"]
    assert "restart required" in reply["result"]["message"]
    saved = load_settings(path)
    assert saved.events.health_interval_s == 120
    assert str(saved.gateway.data_dir) == "/var/lib/roadside-gateway"  # null: the default again
    assert saved.mqtt.password is not None and saved.mqtt.password.get_secret_value() == "s3cret-pw"
    assert app.settings.events.health_interval_s == 3600  # the running value until restart
    assert not list(path.parent.glob(".gateway.toml.*.tmp"))


def test_snapshot_of_unknown_camera_when_enabled(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = write_config(tmp_path, mosquitto.port, events={"snapshots": True})
    with commanded(path, mosquitto.port) as (_app, req):
        reply = req.call("snapshot", {"camera": "cam-north"})
        assert reply["ok"] is False and "unknown camera 'cam-north'" in reply["error"]


def test_v311_reply_to_and_default_reply_topic(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = write_config(tmp_path, mosquitto.port, mqtt={"protocol": "3.1.1"})
    app = App(load_settings(path), path)
    app.start()
    collector = Collector(mosquitto.port, ["answers/#", f"{BASE}/reply/#"], protocol=mqtt.MQTTv311)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sender.connect("127.0.0.1", mosquitto.port)
    sender.loop_start()
    try:
        app.link.wait_connected(10)
        assert app.link.protocol == "3.1.1"
        # Its command subscription can lag its CONNACK (under load): commands before it are lost.
        assert collector.wait_for(lambda: app.link.subscribed), "gateway did not subscribe"
        sender.publish(
            f"{BASE}/cmd/get_config",
            json.dumps({"reply_to": "answers/1", "correlation": {"n": 7}}),
            qos=1,
        )
        sender.publish(f"{BASE}/cmd/get_config", b"", qos=1)
        sender.publish(f"{BASE}/cmd/get_config", json.dumps({"reply_to": "answers/#"}), qos=1)
        assert collector.wait_for(lambda: len(collector.messages) >= 3)
    finally:
        sender.loop_stop()
        sender.disconnect()
        sender._reset_sockets()
        collector.close()
        app.stop()
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for msg in collector.messages:
        by_topic.setdefault(msg.topic, []).append(json.loads(msg.payload))
    answer = by_topic["answers/1"][0]
    assert answer["ok"] is True and answer["correlation"] == {"n": 7}
    default = by_topic[f"{BASE}/reply/get_config"]
    assert [r["ok"] for r in default] == [True, False]
    assert "reply_to must be a topic name" in default[1]["error"]


def test_camera_commands(
    tmp_path: Path, mosquitto: Mosquitto, traffic_mp4: Path, yolox_nano: Path
) -> None:
    camera = {
        "id": "cam-north",
        "source": {"type": "file", "path": str(traffic_mp4), "loop": True},
        "lines": [{"id": "l1", "points": [[0.0, 0.6], [1.0, 0.6]]}],
    }
    path = write_config(
        tmp_path,
        mosquitto.port,
        events={"snapshots": True},
        detector={"model": str(yolox_nano)},
        cameras=[camera],
    )
    collector = Collector(mosquitto.port, [f"{BASE}/snapshot/#"], client_id="snap")
    try:
        with commanded(path, mosquitto.port) as (app, req):
            assert collector.wait_for(lambda: app.cameras["cam-north"].latest_frame() is not None)
            reply = req.call("snapshot", {"camera": "cam-north"})
            assert reply["ok"] is True, reply
            assert reply["result"]["topic"] == f"{BASE}/snapshot/cam-north"
            assert collector.wait_for(lambda: len(collector.messages) == 1)
            image = cv2.imdecode(
                np.frombuffer(collector.messages[0].payload, np.uint8), cv2.IMREAD_COLOR
            )
            assert image is not None and image.shape[1] == 480  # narrower than snapshot_max_width

            reply = req.call("restart_pipeline", {"camera": "cam-north"})
            assert reply == {
                "ok": True,
                "command": "restart_pipeline",
                "result": {"camera": "cam-north"},
            }

            old_runner = app.cameras["cam-north"]
            moved = dict(camera, lines=[{"id": "l2", "points": [[0.0, 0.4], [1.0, 0.4]]}])
            reply = req.call("set_config", {"patch": {"cameras": [moved]}})
            assert reply["ok"] is True, reply
            assert reply["result"] == {"applied": ["cam-north"], "restart_required": []}
            runner = app.cameras["cam-north"]
            assert runner is not old_runner
            assert [line.id for line in runner.camera.lines] == ["l2"]
            assert [line.id for line in app.settings.cameras[0].lines] == ["l2"]
            assert [line.id for line in load_settings(path).cameras[0].lines] == ["l2"]
            assert collector.wait_for(lambda: runner.latest_frame() is not None)
    finally:
        collector.close()


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable, as a read-only mount is (root ignores modes: immutable)."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"cannot make {path} immutable: {proc.stderr.strip()}"
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("what", ["directory", "file"])
def test_set_config_on_unwritable_config_gets_an_error_reply(
    tmp_path: Path, mosquitto: Mosquitto, what: str
) -> None:
    """As under systemd ProtectSystem=strict: a readable error, nothing changed, still serving."""
    if what == "file" and os.geteuid() != 0:
        pytest.skip("a file that cannot be replaced in a writable directory needs root (chattr)")
    etc = tmp_path / "etc"
    etc.mkdir()
    path = write_config(tmp_path, mosquitto.port).rename(etc / "gateway.toml")
    with commanded(path, mosquitto.port) as (app, req):
        before, settings_before = path.read_bytes(), app.settings.model_dump()
        with unwritable(etc if what == "directory" else path):
            reply = req.call("set_config", {"patch": {"events": {"health_interval_s": 120}}})
        assert reply["ok"] is False, reply
        assert reply["error"].startswith(f"set_config failed: cannot write config file {path}: ")
        assert "nothing was changed" in reply["error"]
        assert path.read_bytes() == before
        assert app.settings.model_dump() == settings_before
        assert sorted(p.name for p in etc.iterdir()) == ["gateway.toml"]  # no temp file left
        assert req.call("get_config")["ok"] is True  # still serving
        reply = req.call("set_config", {"patch": {"events": {"health_interval_s": 120}}})
        assert reply["ok"] is True, reply  # writable again: the same change goes through
        assert load_settings(path).events.health_interval_s == 120


class _BrokenCamera:
    def latest_frame(self) -> None:
        return None

    def restart(self) -> None:
        raise RuntimeError("capture thread did not stop")


class _OfflineLink:
    protocol = "5"

    def publish(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def test_a_command_that_fails_unexpectedly_still_gets_a_reply(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, 1883))
    handler = CommandHandler(
        link=_OfflineLink(),
        topics=Topics("city", "sejong-1", "rsu-0001"),
        cameras={"cam-a": _BrokenCamera()},
        settings=lambda: settings,
        apply_settings=lambda change: ApplyResult((), ()),
        authorizer=UnsignedCommands(),
    )
    topic, body, _props = handler.handle(
        Incoming(f"{BASE}/cmd/restart_pipeline", b'{"camera": "cam-a"}', None, None)
    )
    reply = json.loads(body)
    assert topic == f"{BASE}/reply/restart_pipeline"
    assert reply == {
        "ok": False,
        "command": "restart_pipeline",
        "error": "restart_pipeline failed: internal error (RuntimeError)",
    }
    assert handler.rejected == 1
