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
from array import array
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Final

from gateway.ingest.ledger_http import MAX_LINE_BYTES, LedgerReadError, LedgerSource, Request
from gateway.ingest.ledgerdb import ManifestPart, StoredReceipt
from gateway.ingest.receipts import MANIFEST, MANIFEST_LOSS, MANIFEST_TYPE, RECEIPT, unpack_id
from gateway.ingest.reconcile import Receipt

_TAG_SHIFT: Final = 1 << 44
_FIELDS: Final = ("seq", "id0", "id1", "id2")


def _sorted(keys: array[int], values: array[int]) -> tuple[array[int], array[int]]:
    """The pairs in key order (the export is in time order: usually already sorted)."""
    if all(keys[i] <= keys[i + 1] for i in range(len(keys) - 1)):
        return keys, values
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return array("q", (keys[i] for i in order)), array("q", (values[i] for i in order))


def _merge(
    seqs: tuple[array[int], array[int]], *ids: tuple[array[int], array[int]]
) -> Iterator[tuple[int, str, int, int]]:
    """(seq, id, ts ms, copies) where the seq and all three id parts have the key."""
    keys, values = seqs
    at = [0, 0, 0]
    i, n = 0, len(keys)
    while i < n:
        key, seq = keys[i], values[i]
        j = i + 1
        while j < n and keys[j] == key and values[j] == seq:
            j += 1  # the same sample again: a copy written twice
        parts: list[int] = []
        for k, (part_keys, part_values) in enumerate(ids):
            p, end = at[k], len(part_keys)
            while p < end and part_keys[p] < key:
                p += 1
            at[k] = p
            if p < end and part_keys[p] == key:
                parts.append(part_values[p])
        if len(parts) == 3:
            try:
                event_id, _tag = unpack_id(*parts)
            except ValueError:
                event_id = ""  # parts of different events: not a receipt
            if event_id:
                yield seq, event_id, key // 512, j - i
        i = j


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

    def _request(self, name: str, start_ms: int, end_ms: int, gateway: str | None) -> Request:
        labels = [f'__name__=~"{name}"']
        if gateway is not None:
            labels.append(f"gateway={json.dumps(gateway)}")  # a quoted, escaped string
        params = {
            "match[]": "{" + ",".join(labels) + "}",
            "start": f"{start_ms / 1000:.3f}",
            "end": f"{end_ms / 1000:.3f}",
            "max_rows_per_line": str(self.rows_per_line),
        }
        return Request("/api/v1/export", params)

    def units(self, start_ms: int, end_ms: int) -> set[str]:
        """The ``gateway`` label values of the receipts' ``seq`` series in the window."""
        params = {
            "match[]": f'{{__name__="{RECEIPT}_seq"}}',
            "start": f"{start_ms / 1000:.3f}",
            "end": f"{end_ms / 1000:.3f}",
        }
        request = Request("/api/v1/label/gateway/values", params)
        text = b"".join(self.source.lines(request, _HINTS))
        try:
            values = json.loads(text)["data"]
            if not isinstance(values, list):
                raise TypeError("data is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerReadError(
                f"cannot read the ledger from {self.url}: not a label values answer "
                f"({exc}): {text[:120]!r}"
            ) from exc
        return {str(v) for v in values}

    def receipt_requests(self, start_ms: int, end_ms: int, gateway: str | None) -> list[Request]:
        """The requests :meth:`receipts` makes (one export)."""
        return [self._request(f"{RECEIPT}_.+", start_ms, end_ms, gateway)]

    def _export(self, request: Request) -> Iterator[dict[str, Any]]:
        for line in self.source.lines(request, _HINTS):
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

    def receipts(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[StoredReceipt]:
        """The receipts, put back together from their four series.

        Each field's samples are kept as two int64 arrays (key, value), the key being
        ``ts * 512 + tag`` (the tag: ``seq mod 512``, in every id part too); the four
        sorted arrays of a (unit, site, type) are then merged on the key. 32 bytes a
        field and receipt, instead of a dictionary entry each.
        """
        # (gateway, site, type) -> field -> (keys, values)
        fields: dict[tuple[str, str, str], dict[str, tuple[array[int], array[int]]]] = defaultdict(
            dict
        )
        (request,) = self.receipt_requests(start_ms, end_ms, gateway)
        for row in self._export(request):
            labels = row["metric"]
            name = str(labels.get("__name__", ""))[len(RECEIPT) + 1 :]
            if name not in _FIELDS:
                continue
            group = (str(labels.get("gateway", "")), str(labels.get("site", "")))
            keys, values = fields[(*group, str(labels.get("type", "")))].setdefault(
                name, (array("q"), array("q"))
            )
            seq_field = name == "seq"
            for value, ts in zip(row["values"], row["timestamps"], strict=True):
                v = int(value)
                if v != value or v < seq_field:  # seq > 0, parts >= 0
                    continue  # not the ingest's receipt (a string field reads back as 0)
                keys.append(int(ts) * 512 + (v % 512 if seq_field else v // _TAG_SHIFT % 512))
                values.append(v)
        for (gw, site, event_type), by_field in fields.items():
            if len(by_field) < len(_FIELDS):
                continue  # a field's series is missing altogether: no receipt is whole
            for seq, event_id, ts, copies in _merge(*(_sorted(*by_field[f]) for f in _FIELDS)):
                yield StoredReceipt(gw, site, Receipt(seq, event_id, event_type, ts, copies))

    def manifests(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[ManifestPart]:
        """One part per sample of the ``ledger_manifest*`` series."""
        for row in self._export(self._request(f"{MANIFEST}_.+", start_ms, end_ms, gateway)):
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
