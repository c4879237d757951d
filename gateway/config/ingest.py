"""Central ingest configuration: broker subscription and database writes."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from gateway.config.common import StrictModel


class InfluxConfig(StrictModel):
    """An InfluxDB 2.x/3.x (or v2-write compatible) database."""

    url: str = "http://127.0.0.1:8086"
    token: SecretStr = SecretStr("")
    org: str = "city"
    bucket: str = "roadside"
    batch_size: int = Field(default=1000, ge=1)
    flush_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)


class IngestConfig(StrictModel):
    """The `gateway ingest` worker."""

    share_group: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_-]+$")
    topics: list[str] = Field(default_factory=lambda: ["+/+/+/events/#", "+/+/+/health", "+/+/+/sensors/#"])
    dead_letter_topic: str = "city/ingest/deadletter"
    max_payload_bytes: int = Field(default=64 * 1024, ge=256)
    spool_path: Path | None = Field(default=None, description="Where points wait while the database is away.")
    influx: InfluxConfig = Field(default_factory=InfluxConfig)
