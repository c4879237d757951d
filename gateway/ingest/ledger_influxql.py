"""The ledger reader for InfluxDB: InfluxQL over ``/query`` (chunked JSON).

InfluxQL is what every InfluxDB answers: 1.x natively, 2.x through its v1
compatibility API (a DBRP mapping from ``query_database`` to the bucket, and a token
with read access), 3.x natively (``query_database`` = the database). A point comes back
whole (``seq``, ``id0..id2`` in one row), so a receipt needs no pairing. InfluxDB keeps
one point per series and time: a copy written twice overwrote the first, so
``copies`` is always 1 here (VictoriaMetrics counts duplicates; InfluxDB cannot).

Receipts are read in time slices of ``slice_s`` (one query each) and every answer is
asked for chunked (``chunked=true``, ``chunk_size`` points a JSON line): memory is
bounded by a line, not by the window, also where a server ignores chunking and answers
a slice in one document (then the line limit stops the read with a clear error).
Only 1.6 was tested (Debian's ``influxdb``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final, Literal

from gateway.ingest.ledger_http import MAX_LINE_BYTES, LedgerReadError, LedgerSource, Request
from gateway.ingest.ledgerdb import ManifestPart, StoredReceipt
from gateway.ingest.receipts import MANIFEST, MANIFEST_LOSS, MANIFEST_TYPE, RECEIPT, unpack_id
from gateway.ingest.reconcile import Receipt

_NS_PER_MS: Final = 1_000_000
_HINTS: Final = {
    404: "no /query there: is it InfluxDB? For VictoriaMetrics set "
    '[ingest.influx] query_api = "victoriametrics"',
}
# (part kind, measurement, the tag that labels it)
_MANIFEST_POINTS: Final[tuple[tuple[Literal["head", "type", "loss"], str, str], ...]] = (
    ("head", MANIFEST, ""),
    ("type", MANIFEST_TYPE, "type"),
    ("loss", MANIFEST_LOSS, "cause"),
)


def _literal(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class InfluxQLReader:
    """Reads the ledger with InfluxQL at ``url``, database ``database``."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        token: str = "",
        timeout_s: float = 120.0,
        slice_s: float = 3600.0,
        chunk_size: int = 10_000,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.url = url
        self.database = database
        self.slice_ms = max(int(slice_s * 1000), 1)
        self.chunk_size = chunk_size
        self.source = LedgerSource(url, token, timeout_s, max_line_bytes)

    def _fail(self, what: str) -> LedgerReadError:
        if what.startswith("database not found"):
            return LedgerReadError(
                f"cannot read the ledger from {self.url}: database {self.database!r} not "
                "found: set [ingest.influx] query_database (default: the bucket); on "
                "InfluxDB 2.x map it to the bucket with a DBRP mapping (docs/ledger.md)"
            )
        return LedgerReadError(f"cannot read the ledger from {self.url}: InfluxQL: {what[:300]}")

    def _garbage(self, line: bytes, why: str) -> LedgerReadError:
        return LedgerReadError(
            f"cannot read the ledger from {self.url}: not an InfluxQL answer ({why}): "
            f"{line[:120]!r}"
        )

    def _request(self, query: str) -> Request:
        params = {
            "db": self.database,
            "q": query,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(self.chunk_size),
        }
        return Request("/query", params)

    def _series(
        self, request: Request, measurement: str, *, timed: bool = True
    ) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]:
        """(tags, columns, rows) of each chunk of each series of ``measurement``.

        ``timed``: the rows have a ``time`` column (not so for ``SHOW`` statements).
        A chunked answer ends with a result that is not ``partial`` and whose last series
        is not either: one that stops before it (however the connection ended, or a
        server's row limit) is an error, never a shorter answer.
        """
        ended = False
        for line in self.source.lines(request, _HINTS):
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise self._garbage(line, str(exc)) from exc
            if not isinstance(doc, dict):
                raise self._garbage(line, "not an object")
            if "error" in doc:
                raise self._fail(str(doc["error"]))
            results = doc.get("results")
            if not isinstance(results, list):
                raise self._garbage(line, "no results")
            for result in results:
                if not isinstance(result, dict):
                    raise self._garbage(line, "a result that is not an object")
                if "error" in result:
                    raise self._fail(str(result["error"]))
                # not partial, nor its last series (a row limit truncates a series so)
                every = result.get("series") or []
                ended = not result.get("partial") and not (
                    every and isinstance(every[-1], dict) and every[-1].get("partial")
                )
                for series in every:
                    try:
                        name = str(series.get("name", ""))
                        tags = {str(k): str(v) for k, v in (series.get("tags") or {}).items()}
                        columns = [str(c) for c in series["columns"]]
                        rows = series.get("values") or []
                        if not isinstance(rows, list) or not all(
                            isinstance(r, list) and len(r) == len(columns) for r in rows
                        ):
                            raise ValueError("rows do not match the columns")
                    except (AttributeError, KeyError, TypeError, ValueError) as exc:
                        raise self._garbage(line, f"a bad series: {exc}") from exc
                    if name != measurement or (timed and "time" not in columns):
                        # VictoriaMetrics answers every /query with its "databases" list
                        raise self._garbage(
                            line,
                            f"series {name!r} for a query of {measurement!r}; for "
                            'VictoriaMetrics set [ingest.influx] query_api = "victoriametrics"',
                        )
                    yield tags, columns, rows
        if not ended:
            raise LedgerReadError(
                f"cannot read the ledger from {self.url}: the answer ended before its last "
                "chunk (the database stopped or the connection was cut)"
            )

    def _where(self, start_ns: int, end_ns: int, gateway: str | None) -> str:
        where = f"time >= {start_ns} AND time < {end_ns}"
        if gateway is not None:
            where += f' AND "gateway" = {_literal(gateway)}'
        return where

    def _slices(self, start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
        """``[start, end)`` in ns, covering ``[start_ms, end_ms]`` with its last ms."""
        at = start_ms
        while at <= end_ms:
            upto = min(at + self.slice_ms, end_ms + 1)
            yield at * _NS_PER_MS, upto * _NS_PER_MS
            at = upto

    def receipt_requests(self, start_ms: int, end_ms: int, gateway: str | None) -> list[Request]:
        """The requests :meth:`receipts` makes (one query per time slice)."""
        return [
            self._request(
                f'SELECT "seq", "id0", "id1", "id2" FROM "{RECEIPT}" WHERE '
                f'{self._where(start_ns, end_ns, gateway)} GROUP BY "gateway", "site", "type"'
            )
            for start_ns, end_ns in self._slices(start_ms, end_ms)
        ]

    def receipts(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[StoredReceipt]:
        """The receipts, one row each (slice by slice)."""
        for request in self.receipt_requests(start_ms, end_ms, gateway):
            for tags, columns, rows in self._series(request, RECEIPT):
                if not {"seq", "id0", "id1", "id2"} <= set(columns):
                    continue  # no receipt field in this series (another writer's points)
                at = [columns.index(c) for c in ("time", "seq", "id0", "id1", "id2")]
                gw, site = tags.get("gateway", ""), tags.get("site", "")
                event_type = tags.get("type", "")
                i_ts, i_seq, i_0, i_1, i_2 = at
                for row in rows:
                    ts, seq, p0, p1, p2 = row[i_ts], row[i_seq], row[i_0], row[i_1], row[i_2]
                    if not (type(ts) is type(seq) is type(p0) is type(p1) is type(p2) is int):
                        ts, seq, p0, p1, p2 = (_int(v) for v in (ts, seq, p0, p1, p2))
                        if ts is None or seq is None or p0 is None or p1 is None or p2 is None:
                            continue  # a point without all its fields: not a receipt
                    try:
                        event_id, tag = unpack_id(p0, p1, p2)
                    except ValueError:
                        continue
                    if tag != seq % 512 or seq <= 0:
                        continue  # not the ingest's receipt (it writes none for seq 0)
                    receipt = Receipt(seq, event_id, event_type, ts // _NS_PER_MS)
                    yield StoredReceipt(gw, site, receipt)

    def units(self, start_ms: int, end_ms: int) -> set[str]:
        """``SHOW TAG VALUES`` of ``gateway`` (InfluxDB 1.x may ignore the time bounds)."""
        where = self._where(start_ms * _NS_PER_MS, (end_ms + 1) * _NS_PER_MS, None)
        query = f'SHOW TAG VALUES FROM "{RECEIPT}" WITH KEY = "gateway" WHERE {where}'
        out: set[str] = set()
        for _tags, columns, rows in self._series(self._request(query), RECEIPT, timed=False):
            if "value" in columns:
                at = columns.index("value")
                out.update(str(row[at]) for row in rows)
        return out

    def manifests(self, start_ms: int, end_ms: int, gateway: str | None) -> Iterator[ManifestPart]:
        """One part per manifest point, with all its fields."""
        where = self._where(start_ms * _NS_PER_MS, (end_ms + 1) * _NS_PER_MS, gateway)
        for kind, measurement, label_tag in _MANIFEST_POINTS:
            query = f'SELECT * FROM "{measurement}" WHERE {where} GROUP BY *'
            for tags, columns, rows in self._series(self._request(query), measurement):
                gw, site = tags.get("gateway", ""), tags.get("site", "")
                label = tags.get(label_tag, "") if label_tag else ""
                for row in rows:
                    values = {c: _int(v) for c, v in zip(columns, row, strict=True)}
                    ts = values.pop("time")
                    if ts is None:
                        continue
                    fields = {k: v for k, v in values.items() if v is not None}
                    yield ManifestPart(kind, gw, site, label, ts // _NS_PER_MS, fields)
