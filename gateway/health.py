"""Typed health of every part of a gateway, as each part reports it.

One record per part: :class:`CaptureHealth` (a camera's capture thread),
:class:`CameraHealth` (capture plus pipeline), :class:`SensorHealth` (a serial sensor
reader), :class:`OutboxHealth` (the outbox and its forwarder), :class:`LinkHealth`
(the MQTT link) and :class:`SystemHealth` (the machine), gathered in
:class:`GatewayHealth`. :func:`gateway.events.health.health` maps them onto the
``health`` event of the schema, in one place. This module imports nothing of the
gateway, so every part can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CaptureState = Literal["idle", "connecting", "streaming", "stalled", "backoff", "ended", "stopped"]
LinkState = Literal["connecting", "connected", "disconnected", "error"]
BatchMode = Literal["off", "backlog", "negotiate"]


@dataclass(frozen=True, slots=True)
class CaptureHealth:
    """A snapshot of one capture thread."""

    state: CaptureState
    frames_captured: int
    frames_skipped: int
    reconnects: int
    stalls: int
    capture_fps: float
    last_frame_age_s: float | None
    last_error: str | None
    width: int | None
    height: int | None
    nominal_fps: float | None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for ``gateway camera check --json``."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """Counters of one camera pipeline, with its averages."""

    frames: int
    inferred_full: int
    inferred_regions: int
    skipped_motion: int
    detector_calls: int
    inference_ms_avg: float
    detect_ms_avg: float
    detections: int
    events: int

    def as_dict(self) -> dict[str, int | float]:
        """Plain dict for ``gateway count`` and the benchmarks."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """One camera: capture, pipeline, processing rate, errors, latencies, rule counters."""

    camera: str
    capture: CaptureHealth
    processed_fps: float
    pipeline: PipelineHealth
    errors: int
    pipeline_error: str | None
    event_latency_p50_ms: float | None = None
    event_latency_p99_ms: float | None = None
    frame_latency_p50_ms: float | None = None
    frame_latency_p99_ms: float | None = None
    analytics: Mapping[str, float | int] = field(default_factory=dict)
    """Counters the camera's alert rules report (``drift_checks``, ...), by their names."""

    @property
    def state(self) -> CaptureState:
        """The capture's state."""
        return self.capture.state

    @property
    def last_error(self) -> str | None:
        """The capture's last error, else the pipeline's."""
        return self.capture.last_error or self.pipeline_error


@dataclass(frozen=True, slots=True)
class SensorHealth:
    """One serial sensor: its port's counters and its decoder's (or poller's).

    For a polled protocol ``frames`` are its requests and ``bad_checksum`` its bad
    CRCs. ``decoder`` holds the protocol's own further counters (``overflows``,
    ``framer_*``, ``polls``, ...), named as the decoder names them.
    """

    state: str
    last_error: str
    bytes: int = 0
    frames: int = 0
    good: int = 0
    bad_checksum: int = 0
    resyncs: int = 0
    timeouts: int = 0
    reopens: int = 0
    opens: int = 0
    open_failures: int = 0
    readings: int = 0
    callback_errors: int = 0
    decoder_errors: int = 0
    decoder: Mapping[str, int | float | str] = field(default_factory=dict)

    def counters(self) -> dict[str, int | float | str]:
        """Every counter and the state in one flat mapping (the event's and the CLI's shape)."""
        return {
            "bytes": self.bytes,
            "frames": self.frames,
            "good": self.good,
            "bad_checksum": self.bad_checksum,
            "resyncs": self.resyncs,
            **self.decoder,
            "timeouts": self.timeouts,
            "reopens": self.reopens,
            "opens": self.opens,
            "open_failures": self.open_failures,
            "readings": self.readings,
            "callback_errors": self.callback_errors,
            "decoder_errors": self.decoder_errors,
            "state": self.state,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class PartFailure:
    """A part whose health could not be read (the report says why instead)."""

    error: str


@dataclass(frozen=True, slots=True)
class BatchHealth:
    """Compact batches: what is in force, since when, and why."""

    mode: BatchMode
    state: Literal["on", "off"]
    """on: a bulk backlog of the listed types goes in batches."""
    since: float
    """Wall-clock time (epoch seconds) of the last change of what is in force."""
    reason: str
    encoding: str | None
    types: tuple[str, ...]
    consumers: tuple[str, ...]
    """The central consumers whose declarations are in force (``negotiate``)."""
    refusals: int
    """Declarations refused since start (malformed, hostile, unknown encoding)."""
    batches: int
    """Batches published since start."""


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """The outbox and its forwarder: what waits, what is in flight, what was lost."""

    depth: int
    bytes: int
    oldest_age_s: float
    inflight: int
    losses: Mapping[str, int]
    """Persistent loss counters by name (``dropped``, ``lost_refused``, ...)."""
    damaged: int
    """Times a damaged or rolled-back database was recovered."""
    disk_bytes: int
    """Bytes the database, its WAL and its SHM file take on disk now."""
    limit_bytes: int
    """The bound in force: ``max_bytes``, or less when the volume holds less."""
    refused: int
    held_topics: int
    lanes: Mapping[str, int] = field(default_factory=dict)
    """Events waiting per priority lane (``alert``, ``control``, ``bulk``)."""
    batch: BatchHealth | None = None

    @property
    def lost(self) -> int:
        """Events that left the outbox undelivered, all causes."""
        return sum(self.losses.values())


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """The MQTT link."""

    state: LinkState
    protocol: Literal["5", "3.1.1"] | None
    connects: int
    last_error: str | None
    subscribed: bool
    bytes_sent: int = 0
    """MQTT bytes written to the broker by this process (every packet, whole)."""
    bytes_received: int = 0
    """MQTT bytes read from the broker by this process (PUBACKs, CONNACK, commands)."""
    ip_bytes_sent: int = 0
    """IP-layer bytes sent: MQTT, TLS records, TCP/IP headers of every segment (kernel)."""
    ip_bytes_received: int = 0
    """IP-layer bytes received, as :attr:`ip_bytes_sent`."""


@dataclass(frozen=True, slots=True)
class BudgetHealth:
    """The byte budget: level in force, measured usage, projections, what was degraded."""

    level: str
    level_index: int
    over_budget: bool
    changes: int
    bytes_today: int
    bytes_month: int
    limit_day: int | None
    limit_month: int | None
    projected_day: int
    projected_month: int
    rate_bps: float
    crossings_withheld: int
    crossings_held: int
    readings_summarized: int
    summaries: int
    recovered_held: int = 0  # held events the run before left (it did not stop), stored at start
    unreadable_held: int = 0  # held rows that did not read back at start: lost, uncounted else
    rolled_back_crossings: int = 0  # held crossings a power loss rolled back (lost)
    rolled_back_readings: int = 0  # summarized readings a power loss rolled back (lost)


@dataclass(frozen=True, slots=True)
class SystemHealth:
    """CPU, load, temperature, memory and free disk of the data directory."""

    cpu_percent: float
    load_1m: float
    cpu_temp_c: float | None
    mem_used_bytes: int
    mem_total_bytes: int
    mem_percent: float
    disk_free_bytes: int


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """The whole gateway, now."""

    uptime_s: float
    system: SystemHealth
    cameras: Mapping[str, CameraHealth | PartFailure]
    sensors: Mapping[str, SensorHealth | PartFailure]
    outbox: OutboxHealth
    mqtt: LinkHealth
    dropped_events: int
    budget: BudgetHealth | None = None
    """Only with a ``[budget]`` limit."""
