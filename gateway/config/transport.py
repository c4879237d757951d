"""MQTT, outbox and event-publishing configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from gateway.config.common import StrictModel


class TlsConfig(StrictModel):
    """TLS towards the broker; a client certificate and key for mutual TLS."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(default=False, description="Skip hostname verification (testing only).")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttConfig(StrictModel):
    """The MQTT broker connection."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str | None = Field(default=None, description="Defaults to the gateway id.")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="auto: MQTT v5, falling back to v3.1.1."
    )
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    topic_prefix: str = Field(default="city", pattern=r"^[^#+$/][^#+]*$")


class OutboxConfig(StrictModel):
    """The on-disk store-and-forward outbox (SQLite, WAL mode)."""

    path: Path | None = Field(default=None, description="Defaults to <data_dir>/outbox.sqlite3.")
    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=256 * 1024,
        description=(
            "What the outbox may take on disk (database, WAL and SHM files); the oldest "
            "events are dropped and counted beyond it, or beyond what the volume holds."
        ),
    )
    max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    max_inflight: int = Field(
        default=100, ge=1, le=65535, description="Published events awaiting PUBACK at most."
    )
    no_subscribers: Literal["retry", "accept"] = Field(
        default="retry",
        description=(
            "PUBACK 16 (no matching subscribers): retry keeps the event and re-sends it "
            "with back-off until a subscriber takes it; accept removes it and counts it in "
            "accepted_unsubscribed (for brokers whose consumers are not MQTT subscribers)."
        ),
    )
    retry_min_s: float = Field(
        default=1.0, gt=0, description="First delay before re-sending refused events."
    )
    retry_max_s: float = Field(
        default=30.0, gt=0, description="Longest delay between re-sends of refused events."
    )
    backlog_order: Literal["oldest_first", "newest_first"] = Field(
        default="oldest_first",
        description=(
            "How the bulk lane (crossings, zones, aggregates, flow, sensor readings) drains "
            "a backlog after an outage: oldest_first keeps seq order; newest_first sends "
            "what is stored from the reconnection on first, then the backlog newest to "
            "oldest. Alerts and the unit's own state always go first."
        ),
    )
    lane_share: float = Field(
        default=0.1,
        gt=0.0,
        le=0.5,
        description=(
            "Share of publishes a lane with events waiting gets at least, whatever the "
            "lanes above it have to send (0.1: one in ten); no lane starves."
        ),
    )
    batch: Literal["off", "backlog", "negotiate"] = Field(
        default="off",
        description="negotiate: a bulk backlog of at least batch_min_events is sent as "
        "compact batches (zlib'd JSON arrays on .../batch) of the types every central "
        "consumer declares it reads (retained on <prefix>/central/capabilities/+), one "
        "message per event otherwise; backlog: batches of every bulk type whatever the "
        "consumers declare; off: one message per event (docs/events.md).",
    )
    batch_min_events: int = Field(
        default=20, ge=2, le=100_000, description="Bulk events waiting before batches form."
    )
    batch_max_events: int = Field(default=500, ge=2, le=10_000)
    batch_max_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=4 * 1024 * 1024,
        description="JSON bytes of one batch before compression (at most the ingest's "
        "max_batch_bytes).",
    )
    synchronous: Literal["normal", "full"] = Field(
        default="normal",
        description=(
            "SQLite synchronous mode: normal survives a process crash or kill -9; "
            "full also survives power loss (one fsync per batch)."
        ),
    )


class EventsConfig(StrictModel):
    """What the gateway publishes, and how often."""

    health_interval_s: float = Field(default=60.0, gt=0)
    manifest_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="Publish a delivery-ledger manifest this often (0: never; docs/ledger.md).",
    )
    snapshots: bool = Field(
        default=False, description="Allow the snapshot command to publish a JPEG (opt-in)."
    )
    snapshot_max_width: int = Field(default=640, ge=64)
    synthetic_events_per_s: float = Field(
        default=0.0,
        ge=0.0,
        le=100_000.0,
        description="Emit this many synthetic sensor_reading events per second (tests, demos).",
    )
