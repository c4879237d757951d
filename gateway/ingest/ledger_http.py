"""One streamed HTTP GET for the ledger readers: bounded lines, readable errors.

A reader never holds a whole answer: it is read line by line (VictoriaMetrics' export
and InfluxQL's chunked answers are one JSON document a line), and a line longer than
``max_line_bytes`` stops the read with :class:`LedgerReadError` instead of growing
without bound. Every failure (refused, timed out, 401/403, 404, a connection cut in
the middle of an answer) becomes one :class:`LedgerReadError` naming the database and,
where it helps, what to change.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from gateway.errors import GatewayError

MAX_LINE_BYTES: Final = 64 * 1024 * 1024
_BLOCK: Final = 256 * 1024


class LedgerReadError(GatewayError):
    """The database could not be read (away, refused, not the configured query API)."""


def _reason(exc: BaseException, timeout: float) -> str:
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s ([ingest.influx] query_timeout_s)"
    return str(inner) or type(inner).__name__


def _status_message(status: int, body: str, hints: Mapping[int, str]) -> str:
    text = " ".join(body.split())[:200]
    why = {
        401: "not authorized: check [ingest.influx] token (it needs read access)",
        403: "forbidden: the token may not read this database",
    }.get(status, "")
    parts = [f"HTTP {status}", why or hints.get(status, ""), text]
    return "; ".join(p for p in parts if p)


def stream_lines(
    base_url: str,
    path: str,
    params: Mapping[str, str],
    *,
    timeout: float,
    token: str = "",
    max_line_bytes: int = MAX_LINE_BYTES,
    hints: Mapping[int, str] | None = None,
) -> Iterator[bytes]:
    """The non-empty lines of ``GET base_url + path ? params``, one at a time.

    ``token`` goes in ``Authorization: Token ...`` (never in the URL). ``hints`` adds a
    sentence to an HTTP status (404: "not VictoriaMetrics?").

    Raises:
        LedgerReadError: refused, timed out, an HTTP error, a line over
            ``max_line_bytes``, or the connection cut in the middle of the answer.
    """
    where = f"cannot read the ledger from {base_url}"
    address = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        resp = urllib.request.urlopen(
            urllib.request.Request(address, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        body = exc.read(400).decode(errors="replace") if exc.fp is not None else ""
        raise LedgerReadError(f"{where}: {_status_message(exc.code, body, hints or {})}") from exc
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise LedgerReadError(f"{where}: {_reason(exc, timeout)}") from exc
    with resp:
        yield from _lines(resp, where, timeout, max_line_bytes)


def _lines(
    resp: http.client.HTTPResponse, where: str, timeout: float, max_line_bytes: int
) -> Iterator[bytes]:
    """The non-empty lines of an answer, read in blocks.

    Not ``readline``: on a chunked answer it reads through ``peek``, which takes an
    answer cut between two chunks (a database killed mid-answer) for its end. ``read``
    raises ``IncompleteRead`` for it.
    """
    pending: list[bytes] = []  # the start of a line not ended yet
    pending_bytes = 0
    while True:
        try:
            block = resp.read(_BLOCK)
        except (OSError, http.client.HTTPException) as exc:
            raise LedgerReadError(
                f"{where}: the answer broke off ({_reason(exc, timeout)})"
            ) from exc
        if not block:
            line = b"".join(pending)
            if line.strip():
                yield line
            return
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            line = b"".join([*pending, block[start : end + 1]])
            pending, pending_bytes, start = [], 0, end + 1
            if len(line) > max_line_bytes:
                raise _too_large(where, max_line_bytes)
            if line.strip():
                yield line
        if start < len(block):
            pending.append(block[start:])
            pending_bytes += len(block) - start
            if pending_bytes > max_line_bytes:
                raise _too_large(where, max_line_bytes)


def _too_large(where: str, max_line_bytes: int) -> LedgerReadError:
    return LedgerReadError(
        f"{where}: an answer line is over {max_line_bytes} bytes: read a narrower window "
        "(--unit, a shorter --since/--until, or a smaller [ingest.influx] query_slice_s)"
    )


@dataclass(frozen=True, slots=True)
class Request:
    """One GET a reader makes: the path and its query parameters."""

    path: str
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class LedgerSource:
    """Where a reader reads: the database's URL, token, timeout and line limit."""

    url: str
    token: str = ""
    timeout_s: float = 120.0
    max_line_bytes: int = MAX_LINE_BYTES

    def lines(self, request: Request, hints: Mapping[int, str]) -> Iterator[bytes]:
        """:func:`stream_lines` of ``request``."""
        return stream_lines(
            self.url,
            request.path,
            request.params,
            timeout=self.timeout_s,
            token=self.token,
            max_line_bytes=self.max_line_bytes,
            hints=hints,
        )
