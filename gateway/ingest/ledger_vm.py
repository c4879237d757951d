"""The ledger reader for VictoriaMetrics: ``/api/v1/export`` (raw samples, duplicates kept).

VictoriaMetrics stores each field of a point as its own series
(``ledger_event_seq``, ``ledger_event_id0``, ...), so a receipt is put back together
from the samples of its four series at one timestamp; the ``seq mod 512`` tag in each
id part pairs them when two events share a millisecond. Two identical samples are a
copy written twice (``Receipt.copies``). The export is asked for at most
``rows_per_line`` samples a JSON line, so no line grows with the window.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any, Final

from gateway.ingest.ledger_http import MAX_LINE_BYTES, LedgerReadError, LedgerSource
from gateway.ingest.ledgerdb import ManifestPart, StoredReceipt
from gateway.ingest.receipts import MANIFEST, MANIFEST_LOSS, MANIFEST_TYPE, RECEIPT, unpack_hex
from gateway.ingest.reconcile import Receipt

_TAG_SHIFT: Final = 1 << 44
_HINTS: Final = {
    404: "no /api/v1/export there: is it VictoriaMetrics? For InfluxDB set "
    '[ingest.influx] query_api = "influxql"',
    400: 'not an export answer: for InfluxDB set [ingest.influx] query_api = "influxql"',
}


class VictoriaMetricsReader:
    """Reads the ledger with ``/api/v1/export`` at ``url``."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 120.0,
        token: str = "",
        rows_per_line: int = 10_000,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.url = url
        self.rows_per_line = rows_per_line
        self.source = LedgerSource(url, token, timeout_s, max_line_bytes)

    def _export(self, match: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        params = {
            "match[]": match,
            "start": f"{start_ms / 1000:.3f}",
            "end": f"{end_ms / 1000:.3f}",
            "max_rows_per_line": str(self.rows_per_line),
        }
        for line in self.source.lines("/api/v1/export", params, _HINTS):
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("metric"), dict):
                    raise ValueError("a line without 'metric'")
                values, stamps = row["values"], row["timestamps"]
                if len(values) != len(stamps):
                    raise ValueError("values and timestamps differ in length")
                if not all(isinstance(v, (int, float)) for v in values) or not all(
                    isinstance(t, int) for t in stamps
                ):
                    raise ValueError("a value or timestamp that is not a number")
            except (ValueError, KeyError, TypeError) as exc:
                raise LedgerReadError(
                    f"cannot read the ledger from {self.url}: not a VictoriaMetrics export "
                    f"line ({exc}): {line[:120]!r}"
                ) from exc
            yield row

    @staticmethod
    def _selector(name: str, gateway: str | None) -> str:
        labels = [f'__name__=~"{name}"'] + ([f'gateway="{gateway}"'] if gateway else [])
        return "{" + ",".join(labels) + "}"

    def receipts(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[StoredReceipt]:
        """The receipts, put back together from their four series."""
        # (gateway, site, type, ts) -> field -> values (a value twice = a copy written twice)
        samples: dict[tuple[str, str, str, int], dict[str, Counter[int]]] = defaultdict(
            lambda: defaultdict(Counter)
        )
        for row in self._export(self._selector(f"{RECEIPT}_.+", gateway), start_ms, end_ms):
            labels = row["metric"]
            name = str(labels.get("__name__", ""))[len(RECEIPT) + 1 :]
            gw, site = str(labels.get("gateway", "")), str(labels.get("site", ""))
            event_type = str(labels.get("type", ""))
            for value, ts in zip(row["values"], row["timestamps"], strict=True):
                samples[(gw, site, event_type, int(ts))][name][int(value)] += 1
        for (gw, site, event_type, ts), fields in samples.items():
            parts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
            for i in range(3):
                for value in fields.get(f"id{i}", Counter()):
                    parts[value // _TAG_SHIFT][i] = value
            for seq, copies in fields.get("seq", Counter()).items():
                found = parts.get(seq % 512)
                if found is None:
                    continue
                try:
                    event_id, _tag = unpack_hex(found, 32)
                except ValueError:
                    continue  # parts of different events: not a receipt
                yield StoredReceipt(gw, site, Receipt(seq, event_id, event_type, ts, copies))

    def manifests(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[ManifestPart]:
        """One part per sample of the ``ledger_manifest*`` series."""
        for row in self._export(self._selector(f"{MANIFEST}_.+", gateway), start_ms, end_ms):
            labels = row["metric"]
            name = str(labels.get("__name__", ""))
            gw, site = str(labels.get("gateway", "")), str(labels.get("site", ""))
            for value, ts in zip(row["values"], row["timestamps"], strict=True):
                if name.startswith(MANIFEST_TYPE + "_"):
                    label = str(labels.get("type", ""))
                    yield ManifestPart("type", gw, site, label, int(ts), {"count": int(value)})
                elif name.startswith(MANIFEST_LOSS + "_"):
                    field_name = name[len(MANIFEST_LOSS) + 1 :]
                    cause = str(labels.get("cause", ""))
                    yield ManifestPart("loss", gw, site, cause, int(ts), {field_name: int(value)})
                else:
                    field_name = name[len(MANIFEST) + 1 :]
                    yield ManifestPart("head", gw, site, "", int(ts), {field_name: int(value)})
