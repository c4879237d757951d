"""Acknowledgement order, spool bounds, back-off and write outcomes of the ingest worker.

The write-outcome table uses a tiny local HTTP server that answers with a chosen status,
because no real database here can be made to answer 429 or 5xx on demand.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gateway.config.ingest import InfluxConfig
from gateway.errors import IngestError
from gateway.ingest.acks import AckTracker
from gateway.ingest.database import (
    ConfigFaultError,
    Database,
    RejectedWriteError,
    RetryableWriteError,
    parse_retry_after,
)
from gateway.ingest.spool import Spool


class Receipt:
    def __init__(self) -> None:
        self.published = False

    def is_published(self) -> bool:
        return self.published


def test_acks_are_released_in_receive_order() -> None:
    acked: list[tuple[int, int]] = []
    tracker = AckTracker(lambda mid, qos: acked.append((mid, qos)), max_pending=10)
    first, second, third = (tracker.track(mid, 1) for mid in (1, 2, 3))
    assert first is not None and second is not None and third is not None
    second.finish()
    assert tracker.release() == 0  # 1 is not done: 2 waits
    receipt = Receipt()
    first.finish(receipt)  # dead-lettered: done when the broker has the copy
    assert tracker.release() == 0
    receipt.published = True
    assert tracker.release() == 2
    assert acked == [(1, 1), (2, 1)]
    third.finish()
    tracker.release()
    assert acked[-1] == (3, 1)
    assert len(tracker) == 0


def test_acks_of_an_earlier_connection_are_dropped_not_sent() -> None:
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid), max_pending=10)
    old = tracker.track(5, 1)
    tracker.new_connection()  # the broker will redeliver mid 5
    new = tracker.track(5, 1)
    assert old is not None and new is not None
    tracker.release()  # the stale entry goes even though it is not done
    assert len(tracker) == 1
    old.finish()
    new.finish()
    tracker.release()
    assert acked == [5]  # once, for the redelivered copy


def test_qos0_messages_are_bounded_qos1_are_bounded_by_the_broker() -> None:
    tracker = AckTracker(lambda mid, qos: None, max_pending=3)
    assert all(tracker.track(0, 0) is not None for _ in range(3))
    assert tracker.track(0, 0) is None  # refused over the bound
    assert tracker.track(9, 1) is not None  # QoS 1 is flow-controlled by Receive Maximum
    for entry in list(tracker._entries):
        entry.finish()
    tracker.release()
    assert len(tracker) == 0
    assert tracker.track(0, 0) is not None  # room again


def test_spool_is_fifo_bounded_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path, max_bytes=1024 * 1024)
    assert spool.append([b"a 1", b"b 2"], points=2, events=2)
    assert spool.append([b"c 3"], points=1, events=1)
    spool.close()
    spool = Spool(path, max_bytes=1024 * 1024)
    assert spool.events == 3
    oldest = spool.oldest()
    assert oldest is not None
    assert oldest[1:] == (b"a 1\nb 2", 2, 2)
    spool.remove(oldest[0])
    assert spool.events == 1
    assert spool.bytes == 3
    big = [b"x" * 1000] * 1100  # > 1 MiB: refused, nothing stored
    assert not spool.append(big, points=1100, events=1100)
    assert spool.events == 1
    spool.close()


def test_spool_in_an_unusable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(IngestError, match="cannot open the ingest spool"):
        Spool(blocker / "spool.sqlite3", max_bytes=1024 * 1024)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("7", 7.0),
        ("-3", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=1445412480.0) == expected


class _Status(http.server.BaseHTTPRequestHandler):
    """Answers every write with the status (and Retry-After) the test sets."""

    status = 204
    retry_after: str | None = None
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.status)
        if self.retry_after is not None:
            self.send_header("Retry-After", self.retry_after)
        body = b'{"code":"x","message":"refused"}' if self.status >= 400 else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "retry_after", "outcome"),
    [
        (204, None, None),
        (429, "7", RetryableWriteError),
        (503, None, RetryableWriteError),
        (500, "2", RetryableWriteError),
        (400, None, RejectedWriteError),  # bad data (maybe one line): isolate it
        (413, None, RejectedWriteError),
        (422, None, RejectedWriteError),
        (401, None, ConfigFaultError),  # a rotated token: hold and retry, never dead-letter
        (403, None, ConfigFaultError),
        (404, None, ConfigFaultError),  # no such bucket or org
        (405, None, ConfigFaultError),
    ],
)
def test_write_outcome_by_http_status(status: int, retry_after: str | None, outcome: Any) -> None:
    _Status.status, _Status.retry_after = status, retry_after
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    db = Database(InfluxConfig(url=f"http://127.0.0.1:{server.server_address[1]}", timeout_s=5))
    try:
        if outcome is None:
            db.write([b"m f=1 1", b"m f=2 2"])
            assert _Status.bodies[-1] == b"m f=1 1\nm f=2 2"
        else:
            with pytest.raises(outcome) as info:
                db.write([b"m f=1 1"])
            if outcome is RetryableWriteError and status >= 429:
                expected = float(retry_after) if retry_after else None
                assert info.value.retry_after_s == expected
            else:
                assert info.value.status == status
    finally:
        db.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_write_to_nothing_is_retryable() -> None:
    from gateway.localservers import free_port

    db = Database(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=2))
    try:
        with pytest.raises(RetryableWriteError):
            db.write([b"m f=1 1"])
    finally:
        db.close()
