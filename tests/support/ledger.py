"""A unit's delivery ledger without a broker: a real outbox, the ingest's conversion.

:class:`LedgerUnit` stores events and manifests in a real :class:`Outbox` (its ledger
account, bounds and seq record), and :meth:`LedgerUnit.deliver` takes what it holds,
acknowledges it (as the broker would) and returns the line-protocol bodies the ingest
writes for each message (:func:`gateway.ingest.convert.convert`, receipts included).
What reaches the database, what is lost in transit and what arrives twice is up to the
test. :class:`LedgerDb` writes those bodies to a real database and runs the audit CLI
over it with one reader.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.cli import main
from gateway.config.ingest import InfluxConfig, IngestConfig
from gateway.events import Draft, Topics
from gateway.ingest.convert import Limits, convert
from gateway.ingest.database import Database
from gateway.localservers import InfluxDB, VictoriaMetrics
from gateway.transport.outbox import Outbox

TOPICS = Topics("city", "sejong-1", "rsu-0001")
_last_manifest_ms = 0


def reading(n: int, pad: int = 0) -> Draft:
    """A sensor reading (``pad`` characters of padding make it larger)."""
    values: dict[str, Any] = {"n": n, **({"pad": "x" * pad} if pad else {})}
    data = {"sensor": "pm-1", "protocol": "test", "values": values, "extra": {}}
    return Draft("sensor_reading", "pm-1", time.time(), data)


@dataclass
class LedgerUnit:
    """One unit's outbox at ``path`` and what of it was taken so far."""

    path: Path
    max_bytes: int = 256 * 1024 * 1024
    topics: Topics = TOPICS
    box: Outbox = field(init=False)
    cursor: int = 0

    def __post_init__(self) -> None:
        self.box = Outbox(self.path, self.topics, max_bytes=self.max_bytes)

    def emit(self, first: int, count: int, pad: int = 0) -> list[int]:
        """Store readings ``first .. first+count-1``; their seqs."""
        return self.box.add([reading(i, pad) for i in range(first, first + count)]).seqs

    def manifest(self) -> int:
        """Store a manifest; its seq. Never in the millisecond of the previous one.

        (VictoriaMetrics stores milliseconds: two manifests of one unit in one ms cannot be
        told apart there; a real unit sends one every few minutes. 2 ms apart, since the
        envelope's time is rounded to the ms.)
        """
        global _last_manifest_ms  # noqa: PLW0603 - across the units of one test
        now = time.time()
        while int(now * 1000) <= _last_manifest_ms + 1:
            time.sleep(0.001)
            now = time.time()
        _last_manifest_ms = int(now * 1000)
        return self.box.add_manifest(now, 300.0).seqs[0]

    def deliver(self) -> dict[int, bytes]:
        """Everything not taken yet, acknowledged: seq -> the ingest's line protocol."""
        rows = self.box.fetch(self.cursor, 1_000_000)
        if not rows:
            return {}
        self.cursor = rows[-1].seq
        self.box.ack([r.seq for r in rows])
        limits = Limits.of(IngestConfig())
        return {r.seq: convert(r.payload, limits, time.time(), r.topic).body for r in rows}

    def close(self) -> None:
        """Close the outbox."""
        self.box.close()


@dataclass
class LedgerDb:
    """A real database, how the ingest's bodies get into it, and the audit's reader."""

    api: str  # [ingest.influx] query_api
    server: VictoriaMetrics | InfluxDB

    def write(self, bodies: list[bytes]) -> None:
        """Write the bodies as the ingest would.

        VictoriaMetrics: through the ingest's own client (``/api/v2/write``). InfluxDB 1.6
        has no v2 write API: the very same bodies go through its v1 ``/write?db=``.
        """
        if not bodies:
            return
        if isinstance(self.server, InfluxDB):
            self.server.write(b"\n".join(bodies))
            return
        database = Database(InfluxConfig(url=self.server.url, token="t"))
        try:
            database.write(bodies)
        finally:
            database.close()
        self.server.flush()

    def config(self, tmp_path: Path, **influx: str) -> Path:
        """An ingest config that reads this database with its reader."""
        keys = {"url": self.server.url, "token": "t", "query_api": self.api, **influx}
        path = tmp_path / f"audit-{self.api}.toml"
        path.write_text("[ingest.influx]\n" + "".join(f'{k} = "{v}"\n' for k, v in keys.items()))
        return path

    def audit(self, tmp_path: Path, *extra: str, **influx: str) -> tuple[int, dict[str, Any]]:
        """``gateway ingest audit --since 1h --json --no-write`` (in process): code, report."""
        args = ["ingest", "audit", "-c", str(self.config(tmp_path, **influx))]
        out = io.StringIO()
        with redirect_stdout(out):
            code = main([*args, "--since", "1h", "--json", "--no-write", *extra])
        text = out.getvalue()
        return code, json.loads(text) if text else {}


def store_readings(tmp_path: Path, db: LedgerDb, count: int) -> None:
    """A unit stores ``count`` readings and a manifest; all of it reaches ``db``."""
    unit = LedgerUnit(tmp_path / "unit" / "outbox.db")
    unit.emit(0, count)
    unit.manifest()
    db.write(list(unit.deliver().values()))
    unit.close()
