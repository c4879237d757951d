"""Run the demo: broker, simulated sensors, the gateway runtime on the simulated camera.

Everything runs in this process on loopback ports; :class:`DemoSession` starts the
parts in dependency order and stops them in reverse, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.config.sources import SimulatorSource
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
from gateway.interrupt import stop_on_interrupt
from gateway.localservers import free_port
from gateway.runtime.parts import RunningCamera

log = logging.getLogger(__name__)

BEHIND_TOLERANCE = 0.05  # processed rate this far below the camera's shows a warning
BEHIND_MIN_FRAMES = 20  # ... once this many frames have been processed


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)`` with a clear error."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--broker must be HOST:PORT, got {text!r}")
    return host, int(port)


@dataclass
class DemoState:
    """What the live view and the summary show, sampled from the running parts.

    Frames are counted at three places: ``frames_camera`` the simulated camera produced
    (it skips frames when it falls behind, as a camera does), ``frames_captured`` the
    capture thread received, ``frames_processed`` went through the detector and the
    counter; ``frames_dropped`` is camera minus processed. ``processed_fps`` is processed
    frames per second (over the last few seconds while running; over the run at the
    end), next to the camera's ``camera_fps``.
    """

    elapsed_s: float = 0.0
    seconds: float = 0.0
    broker: str = ""
    interrupted: bool = False
    counted: Counts = field(default_factory=Counter)
    truth: Counts = field(default_factory=Counter)  # completed crossings
    truth_in_flight: Counts = field(default_factory=Counter)  # objects still on the line
    camera_fps: float = 0.0
    processed_fps: float = 0.0
    frames_camera: int = 0
    frames_captured: int = 0
    frames_processed: int = 0
    inference_ms: float = 0.0
    events_per_s: float = 0.0
    received: dict[str, int] = field(default_factory=dict)
    sensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox_depth: int = 0
    mqtt_state: str = ""
    ingest: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_dropped(self) -> int:
        """Camera frames that were never processed."""
        return max(0, self.frames_camera - self.frames_processed)

    @property
    def behind(self) -> bool:
        """Whether processing falls below the camera's rate (by more than 5 %)."""
        if self.frames_processed < BEHIND_MIN_FRAMES:
            return False
        return self.processed_fps < (1 - BEHIND_TOLERANCE) * self.camera_fps

    @property
    def events(self) -> int:
        """Events received from the broker (availability messages not included)."""
        return sum(n for k, n in self.received.items() if k != "availability")

    @property
    def watch_command(self) -> str:
        """The ``mosquitto_sub`` command that shows the demo's events."""
        host, _, port = self.broker.rpartition(":")
        return f"mosquitto_sub -h {host} -p {port} -t '#' -v"

    def summary(self) -> dict[str, Any]:
        """The ``--json`` summary: flat ``line/direction/class`` maps for counts and truth."""
        return {
            "seconds": round(self.elapsed_s, 1),
            "interrupted": self.interrupted,
            "broker": self.broker,
            "watch": self.watch_command,
            "camera_fps": self.camera_fps,
            "processed_fps": round(self.processed_fps, 2),
            "frames_camera": self.frames_camera,
            "frames_captured": self.frames_captured,
            "frames_processed": self.frames_processed,
            "frames_dropped": self.frames_dropped,
            "inference_ms": round(self.inference_ms, 2),
            "events_received": self.events,
            "received_by_type": dict(sorted(self.received.items())),
            "counted": _keyed(self.counted),
            "truth": _keyed(self.truth),
            "truth_in_flight": _keyed(self.truth_in_flight),
            "counted_total": sum(self.counted.values()),
            "truth_total": sum(self.truth.values()),
        }


def _keyed(counts: Counts) -> dict[str, int]:
    return {"/".join(k): n for k, n in sorted(counts.items())}


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
            start = time.monotonic()
            # Ctrl-C sets `stop` (a KeyboardInterrupt inside a thread join would leave a
            # camera thread running into the interpreter's exit); a second one quits.
            with stop_on_interrupt() as stop:
                try:
                    while (elapsed := time.monotonic() - start) < self.seconds:
                        self._sample(elapsed)
                        if on_tick is not None:
                            on_tick(self.state)
                        if stop.wait(min(0.5, max(0.0, self.seconds - elapsed))):
                            self.state.interrupted = True
                            log.info("interrupted: stopping the demo")
                            break
                finally:
                    self._sample(time.monotonic() - start)
                    self.app.stop()
                self._settle()
            self._sample(self.state.elapsed_s, final=True)
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

    def _sample(self, elapsed: float, *, final: bool = False) -> None:
        st = self.state
        st.elapsed_s = elapsed
        runner = self.app.cameras.get(CAMERA_ID) if self.app is not None else None
        if runner is not None:
            self._sample_camera(runner, final)
        if self.app is not None:
            st.outbox_depth = int(self.app.outbox.depth)
            st.mqtt_state = self.app.link.health().state
        if self.monitor is not None:
            st.received, st.sensors = self.monitor.snapshot()
            st.events_per_s = self.monitor.rate()
        if self._ingest is not None and hasattr(self._ingest, "stats"):
            with contextlib.suppress(Exception):
                stats = self._ingest.stats
                st.ingest = dict(stats() if callable(stats) else stats.as_dict())

    def _sample_camera(self, runner: RunningCamera, final: bool) -> None:
        st = self.state
        source = runner.camera.source
        assert isinstance(source, SimulatorSource)  # the demo's camera is the simulator
        health = runner.health()
        st.camera_fps = float(source.fps)
        st.frames_captured = health.capture.frames_captured
        st.frames_processed = health.pipeline.frames
        st.inference_ms = health.pipeline.inference_ms_avg
        if self._truth is None:
            self._truth = TruthCounter(source)
        counts = runner.counts()
        counted = Counter(dict(_flatten(counts))) if counts is not None else Counter()
        latest = runner.latest_frame()  # taken after the counts: its truth is never behind them
        if latest is not None:
            # The simulator's frame number (it skips frames when behind); frames it skipped
            # before this one are the difference to the capture's own frame index.
            frame_no = round(latest.pts_s * source.fps)
            st.frames_camera = st.frames_captured + max(0, frame_no - latest.index - 1)
            truth = self._truth.advance(frame_no)
            st.truth, st.truth_in_flight = truth.completed, truth.in_flight
            st.counted = counted
        if final and st.frames_camera:
            st.processed_fps = st.frames_processed * source.fps / st.frames_camera
        else:
            st.processed_fps = health.processed_fps


def _flatten(
    counts: dict[str, dict[str, dict[str, int]]],
) -> Iterator[tuple[tuple[str, str, str], int]]:
    for line, dirs in counts.items():
        for direction, labels in dirs.items():
            for label, n in labels.items():
                yield (line, direction, label), n
