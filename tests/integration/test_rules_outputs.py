"""MQTT and webhook outputs against real local servers (Mosquitto, an HTTP server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.actuation import Actuation
from gateway.config.rules import RuleConfig
from gateway.localservers import Mosquitto, free_port
from gateway.rules.actuators.registry import ActuatorFactory
from gateway.rules.engine import RulesEngine
from gateway.rules.types import CameraStatus
from gateway.vision.analytics.types import Alert
from tests.support.rules import wait_for

TOPIC = "pole/sign/1"


def engine_for(action: dict[str, Any]) -> tuple[RulesEngine, list[Actuation]]:
    cfg = RuleConfig.model_validate(
        {
            "id": "sign",
            "trigger": {"type": "alert", "kind": "wrong_way", "camera": "cam"},
            "actions": [action],
        }
    )
    events: list[Actuation] = []
    status = {"cam": CameraStatus("streaming", 0.0)}
    engine = RulesEngine([cfg], ActuatorFactory(gateway_id="gw-1"), events.append,
                         camera_status=status.get)  # fmt: skip
    return engine, events


def wrong_way() -> Alert:
    return Alert("cam", "wrong_way", time.time(), line_id="l1", track_id=8, label="car")


def retained(port: int, topic: str, timeout: float = 10.0) -> str | None:
    """The retained payload a new subscriber gets (None when there is none)."""
    got: list[str] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}")
    client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_a: threading.Timer(0.5, done.set).start()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(msg.payload.decode())
        done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(timeout)
    client.loop_stop()
    client.disconnect()
    client._reset_sockets()
    return got[-1] if got else None


def mqtt_action(port: int, **extra: Any) -> dict[str, Any]:
    broker = {"port": port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}
    return {"type": "mqtt", "broker": broker, "topic": TOPIC, "active": "WRONG WAY",
            "idle": "off", "fail_safe": "blank", "hold_s": 0.3, "retry_max_s": 0.2,
            **extra}  # fmt: skip


def test_mqtt_output_publishes_states_retained_and_fail_safe_on_stop(
    mosquitto: Mosquitto,
) -> None:
    engine, events = engine_for(mqtt_action(mosquitto.port))
    engine.start()
    try:
        assert wait_for(lambda: any(e.state == "idle" and e.outcome == "ok" for e in events))
        engine.on_analytics([wrong_way()])
        assert wait_for(lambda: [e.state for e in events if e.outcome == "ok"][-2:] ==
                        ["active", "idle"])  # fmt: skip
    finally:
        engine.stop()
    assert retained(mosquitto.port, TOPIC) == "blank"
    ok = [e for e in events if e.outcome == "ok"]
    assert [e.value for e in ok] == ["off", "WRONG WAY", "off", "blank"]


def test_mqtt_broker_missing_at_start_then_back(tmp_path: Path) -> None:
    port = free_port()
    engine, events = engine_for(mqtt_action(port, timeout_s=0.3))
    engine.start()
    broker = Mosquitto(tmp_path / "mosquitto", port)
    try:
        assert wait_for(lambda: any(e.outcome == "failed" for e in events))
        engine.on_analytics([wrong_way()])  # the alert comes while the broker is away
        time.sleep(0.5)  # ... and its hold runs out
        broker.start()
        assert wait_for(lambda: any(e.outcome == "ok" for e in events), 30)
        assert wait_for(lambda: retained(port, TOPIC, 2) == "off", 20)  # the latest state: idle
    finally:
        engine.stop()
        broker.stop()
    first_ok = next(e for e in events if e.outcome == "ok")
    assert first_ok.attempts >= 2


WILL_SCRIPT = """
import sys, time
from tests.integration.test_rules_outputs import engine_for, mqtt_action, wrong_way
engine, events = engine_for(mqtt_action(int(sys.argv[1]), hold_s=600))
engine.start()
engine.on_analytics([wrong_way()])
while not any(e.state == "active" and e.outcome == "ok" for e in events):
    time.sleep(0.01)
print("active", flush=True)
time.sleep(600)
"""


def test_mqtt_fail_safe_is_the_will_when_the_process_is_killed(mosquitto: Mosquitto) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", WILL_SCRIPT, str(mosquitto.port)],
        cwd=root,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"active"
        assert retained(mosquitto.port, TOPIC) == "WRONG WAY"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_for(lambda: retained(mosquitto.port, TOPIC, 2) == "blank", 20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


class Hook:
    """A local HTTP endpoint: answers ``codes`` in turn (then 200), or hangs ``delay_s``."""

    def __init__(self, codes: list[int], delay_s: float = 0.0) -> None:
        self.codes = list(codes)
        self.delay_s = delay_s
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                if hook.delay_s:
                    time.sleep(hook.delay_s)
                code = hook.codes.pop(0) if hook.codes else 200
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left: that is the point of the test

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/beacon"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory() -> Iterator[Any]:
    made: list[Hook] = []

    def make(codes: list[int], delay_s: float = 0.0) -> Hook:
        made.append(Hook(codes, delay_s))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def test_webhook_retries_server_errors_and_posts_the_state(hook_factory: Any) -> None:
    hook = hook_factory([200, 503, 503])  # idle at start, then the first two tries fail
    engine, events = engine_for({"type": "webhook", "url": hook.url, "fail_safe": "safe",
                                 "hold_s": 5, "retry_max_s": 0.1})  # fmt: skip
    engine.start()
    try:
        assert wait_for(lambda: len(hook.bodies) == 1)
        engine.on_analytics([wrong_way()])
        assert wait_for(lambda: any(e.state == "active" and e.outcome == "ok" for e in events))
    finally:
        engine.stop()
    states = [(e.state, e.outcome, e.attempts) for e in events]
    assert states == [("idle", "ok", 1), ("active", "failed", 1), ("active", "ok", 3),
                      ("fail_safe", "ok", 1)]  # fmt: skip
    assert "HTTP 503" in (events[1].error or "")
    body = hook.bodies[1]
    assert body["gateway"] == "gw-1" and body["rule"] == "sign" and body["state"] == "active"
    assert body["reason"] == "alert" and body["details"]["line"] == "l1"
    assert hook.bodies[-1]["value"] == "safe"


def test_webhook_that_hangs_times_out_and_gives_up_after_its_retries(hook_factory: Any) -> None:
    hook = hook_factory([], delay_s=1.5)
    engine, events = engine_for({"type": "webhook", "url": hook.url, "fail_safe": "safe",
                                 "hold_s": 5, "timeout_s": 0.2, "retries": 1,
                                 "retry_max_s": 0.05})  # fmt: skip
    engine.start()
    try:
        assert wait_for(lambda: any(e.outcome == "gave_up" for e in events), 20)
    finally:
        engine.stop(timeout_s=0.3)
    gave_up = next(e for e in events if e.outcome == "gave_up")
    assert gave_up.attempts == 2 and "timed out" in (gave_up.error or "")
