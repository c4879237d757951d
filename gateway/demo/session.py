"""Run the demo: broker, simulated sensors, the gateway runtime on the simulated camera.

Everything runs in this process on loopback ports; :class:`DemoSession` starts the
parts in dependency order and stops them in reverse, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.demo.monitor import Monitor
from gateway.demo.scenario import (
    CAMERA_ID,
    SENSOR_PROTOCOLS,
    Condition,
    Counts,
    TruthCounter,
    settings,
)
from gateway.errors import UsageError

log = logging.getLogger(__name__)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)`` with a clear error."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--broker must be HOST:PORT, got {text!r}")
    return host, int(port)


@dataclass
class DemoState:
    """What the live view shows, sampled from the running parts."""

    elapsed_s: float = 0.0
    seconds: float = 0.0
    broker: str = ""
    counted: Counts = field(default_factory=Counter)
    truth: Counts = field(default_factory=Counter)
    fps: float = 0.0
    frames: int = 0
    inference_ms: float = 0.0
    events_per_s: float = 0.0
    received: dict[str, int] = field(default_factory=dict)
    sensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox_depth: int = 0
    mqtt_state: str = ""
    ingest: dict[str, Any] = field(default_factory=dict)


class DemoSession:
    """One demo run; :meth:`run` returns the final :class:`DemoState`."""

    def __init__(
        self,
        seconds: float,
        *,
        broker: str | None = None,
        influx_url: str | None = None,
        seed: int = 7,
        condition: Condition = "day",
    ) -> None:
        if influx_url is not None and broker is None:
            raise UsageError(
                "--influx-url needs --broker HOST:PORT: the ingest worker uses MQTT v5 shared "
                "subscriptions, which the embedded broker does not support (use Mosquitto)"
            )
        self.seconds = seconds
        self.broker_arg = broker
        self.influx_url = influx_url
        self.seed = seed
        self.condition: Condition = condition
        self.state = DemoState(seconds=seconds)
        self.app: Any = None
        self.monitor: Monitor | None = None
        self._ingest: Any = None
        self._truth: TruthCounter | None = None

    def run(self, on_tick: Callable[[DemoState], None] | None = None) -> DemoState:
        """Start everything, run for ``seconds``, stop everything; return the final state."""
        with contextlib.ExitStack() as stack:
            host, port = self._broker(stack)
            self.state.broker = f"{host}:{port}"
            ports = self._sensors(stack)
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gw-demo-")))
            # The embedded broker speaks MQTT 3.1.1 only: skip the v5 attempt and its back-off.
            protocol: Literal["auto", "3.1.1"] = "auto" if self.broker_arg else "3.1.1"
            cfg = settings(
                data_dir,
                (host, port),
                ports,
                seed=self.seed,
                condition=self.condition,
                mqtt_protocol=protocol,
            )
            self.monitor = Monitor(host, port, f"{cfg.mqtt.topic_prefix}/#")
            self.monitor.start()
            stack.callback(self.monitor.stop)
            if self.influx_url is not None:
                self._start_ingest(stack, cfg)
            from gateway.app import App

            self.app = App(cfg)
            self.app.start()
            try:
                start = time.monotonic()
                while (elapsed := time.monotonic() - start) < self.seconds:
                    self._sample(elapsed)
                    if on_tick is not None:
                        on_tick(self.state)
                    time.sleep(min(0.5, max(0.0, self.seconds - elapsed)))
                self._sample(time.monotonic() - start)
            finally:
                self.app.stop()
            self._settle()
            self._sample(self.state.elapsed_s)
        return self.state

    # -- parts ---------------------------------------------------------------------------

    def _broker(self, stack: contextlib.ExitStack) -> tuple[str, int]:
        if self.broker_arg is not None:
            return parse_broker(self.broker_arg)
        from gateway.demo.broker import EmbeddedBroker

        broker = EmbeddedBroker(free_port())
        broker.start()
        stack.callback(broker.stop)
        return broker.host, broker.port

    def _sensors(self, stack: contextlib.ExitStack) -> dict[str, str]:
        from simulators.sensors.stream import StreamSimulator

        ports: dict[str, str] = {}
        for i, (sensor_id, protocol) in enumerate(SENSOR_PROTOCOLS.items()):
            sim = StreamSimulator(protocol, rate_hz=1.0, seed=self.seed + i)
            ports[sensor_id] = sim.start()
            stack.callback(sim.stop)
        return ports

    def _start_ingest(self, stack: contextlib.ExitStack, cfg: Any) -> None:
        from gateway.ingest.worker import IngestWorker

        ingest_cfg = cfg.model_copy(
            update={
                "ingest": cfg.ingest.model_copy(
                    update={"influx": cfg.ingest.influx.model_copy(update={"url": self.influx_url})}
                )
            }
        )
        self._ingest = IngestWorker(ingest_cfg, "demo")
        self._ingest.start()
        stack.callback(self._ingest.stop)

    def _settle(self, timeout: float = 5.0) -> None:
        """Give the monitor a moment to receive what the gateway flushed on stop."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline and self.monitor is not None:
            now = self.monitor.events
            if now == last:
                break
            last = now
            time.sleep(0.5)

    def _sample(self, elapsed: float) -> None:
        st = self.state
        st.elapsed_s = elapsed
        runner = self.app.cameras.get(CAMERA_ID) if self.app is not None else None
        if runner is not None:
            health = runner.health()
            st.fps = float(health.get("processed_fps") or 0.0)
            st.frames = int(health.get("frames_captured") or 0)
            st.inference_ms = float(health.get("pipeline", {}).get("inference_ms_avg") or 0.0)
            counts = runner.counts()
            if counts is not None:
                st.counted = Counter(dict(_flatten(counts)))
            if self._truth is None:
                self._truth = TruthCounter(runner.camera.source)
            latest = runner.latest_frame()
            if latest is not None:  # the simulator skips frames when behind: follow its clock
                fps = runner.camera.source.fps
                st.truth = self._truth.advance(round(latest.pts_s * fps))
        if self.app is not None:
            st.outbox_depth = int(self.app.outbox.depth)
            st.mqtt_state = str(self.app.link.health().get("state", ""))
        if self.monitor is not None:
            st.received, st.sensors = self.monitor.snapshot()
            st.events_per_s = self.monitor.rate()
        if self._ingest is not None and hasattr(self._ingest, "stats"):
            with contextlib.suppress(Exception):
                stats = self._ingest.stats
                st.ingest = dict(stats() if callable(stats) else stats.as_dict())


def _flatten(
    counts: dict[str, dict[str, dict[str, int]]],
) -> Iterator[tuple[tuple[str, str, str], int]]:
    for line, dirs in counts.items():
        for direction, labels in dirs.items():
            for label, n in labels.items():
                yield (line, direction, label), n
