"""Central ingest configuration: broker subscription and database writes.

The broker itself comes from the ``[mqtt]`` section; see ``docs/ingest.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from gateway.config.common import StrictModel


class InfluxConfig(StrictModel):
    """An InfluxDB 2.x/3.x (or v2-write compatible) database."""

    url: str = Field(default="http://127.0.0.1:8086", description="Base URL of the database.")
    token: SecretStr = Field(default=SecretStr(""), description="API token (write access).")
    org: str = "city"
    bucket: str = Field(default="roadside", description="Bucket (InfluxDB 3: database).")
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="Points per write.")
    flush_interval_s: float = Field(
        default=1.0, gt=0, description="Write a partial batch after this long."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of one write.")
    retry_min_s: float = Field(default=0.5, gt=0, description="First back-off delay.")
    retry_max_s: float = Field(default=30.0, gt=0, description="Longest back-off delay.")
    gzip: bool = Field(default=False, description="Compress write bodies.")
    query_api: Literal["victoriametrics", "influxql"] | None = Field(
        default=None,
        description=(
            "How the delivery-ledger audit reads the database back: influxql (/query: "
            "InfluxDB 1.x, 2.x through its v1 API and a DBRP mapping, 3.x) or "
            "victoriametrics (/api/v1/export). Unset: the audit refuses to guess."
        ),
    )
    query_database: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f]+$",
        description="InfluxQL database (default: bucket; InfluxDB 2.x: the DBRP mapping's db).",
    )
    query_timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="Read timeout of one audit query."
    )
    query_slice_s: float = Field(
        default=3600.0,
        ge=60,
        le=86_400,
        description="An audit reads receipts in time slices this long (one query each).",
    )

    @model_validator(mode="after")
    def _retry_order(self) -> InfluxConfig:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self


class IngestConfig(StrictModel):
    """The `gateway ingest` worker."""

    share_group: str = Field(
        default="ingest",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Workers in one group split the messages ($share/<group>/<filter>).",
    )
    topics: list[str] = Field(
        default_factory=lambda: [
            "+/+/+/events/#",
            "+/+/+/health",
            "+/+/+/sensors/#",
            "+/+/+/status",
            "+/+/+/batch",
        ],
        min_length=1,
        description="Topic filters (without $share/...).",
    )
    dead_letter_topic: str = Field(
        default="city/ingest/deadletter",
        description="A notice of every dead letter is published here (QoS 1).",
    )
    dead_letter_store: bool = Field(
        default=True,
        description=(
            "Keep dead letters in a local SQLite store (list and replay them with "
            "`gateway ingest deadletters`). Off: the topic notice is the only copy and a "
            "persistent subscriber must collect it."
        ),
    )
    dead_letter_path: Path | None = Field(
        default=None, description="Defaults to <data_dir>/ingest-deadletters.sqlite3."
    )
    dead_letter_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Payload bytes the store keeps at most; when full, messages are held.",
    )
    stats_topic: str = Field(
        default="city/ingest/stats",
        description="Counters are published (retained) on <stats_topic>/<worker>.",
    )
    stats_interval_s: float = Field(default=10.0, gt=0, description="Counter log/publish period.")
    max_payload_bytes: int = Field(default=64 * 1024, ge=256)
    max_batch_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="A compact batch inflating beyond this is dead-lettered (oversized).",
    )
    max_batch_events: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Events one compact batch may hold."
    )
    declare: bool = Field(
        default=True,
        description="Publish, retained, what this worker's group reads on "
        "<prefix>/central/capabilities/<share_group> on every connection, so that units "
        'with [outbox] batch = "negotiate" batch only what it reads (docs/events.md).',
    )
    batch_types: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] | None = Field(
        default=None,
        max_length=64,
        description="Event types declared as read in compact batches (None: every type; "
        "[]: none). Declared empty when no topic filter covers .../batch.",
    )
    min_event_time: datetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC),
        description="Events stamped earlier are rejected (dead letter out_of_range).",
    )
    max_future_s: float = Field(
        default=86_400.0,
        gt=0,
        le=365 * 86_400.0,
        description=(
            "Events stamped further ahead of this worker's clock are rejected "
            "(out_of_range); VictoriaMetrics silently drops points over 2 days ahead."
        ),
    )
    validation: Literal["fast", "full"] = Field(
        default="fast",
        description="fast: envelope + mapped fields; full: also the JSON Schema (slower).",
    )
    receive_maximum: int = Field(
        default=4000,
        ge=1,
        le=65535,
        description="Unacknowledged messages the broker may send (MQTT v5 Receive Maximum).",
    )
    max_queue_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024 * 1024,
        description=(
            "Received payload bytes waiting to be processed at most; over it the worker "
            "stops reading the socket (the broker keeps the messages)."
        ),
    )
    reconnect_max_s: float = Field(
        default=2.0,
        gt=0,
        le=60.0,
        description=(
            "Longest wait between reconnect attempts ([mqtt] reconnect_min_s is the "
            "first): the worker is subscribed again within seconds of the broker."
        ),
    )
    session_expiry_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long the broker keeps an offline worker's session and messages.",
    )
    spool_path: Path | None = Field(
        default=None, description="Where points wait while the database is away (SQLite)."
    )
    spool_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    ledger_receipts: bool = Field(
        default=True,
        description="Write a ledger_event receipt per event for `gateway ingest audit`.",
    )
    ledger_audit_interval_s: float = Field(
        default=0.0,
        ge=0,
        description="Reconcile the ledger of the last ledger_audit_window_s this often and "
        "write the accounts (0: never; `gateway ingest audit` does it on demand).",
    )
    ledger_audit_window_s: float = Field(default=7200.0, gt=0)
    influx: InfluxConfig = Field(default_factory=InfluxConfig)

    @model_validator(mode="after")
    def _filters(self) -> IngestConfig:
        if self.ledger_audit_interval_s > 0 and self.influx.query_api is None:
            raise ValueError(
                "ledger_audit_interval_s > 0 needs [ingest.influx] query_api: "
                '"influxql" (InfluxDB) or "victoriametrics"'
            )
        for topic in self.topics:
            if topic.startswith("$share/") or not topic:
                raise ValueError(f"topics: {topic!r}: give the plain filter, without $share/")
        for name in ("dead_letter_topic", "stats_topic"):
            if any(c in getattr(self, name) for c in "+#"):
                raise ValueError(f"{name}: wildcards are not allowed in a topic name")
        return self
