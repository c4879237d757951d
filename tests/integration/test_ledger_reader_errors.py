"""The ledger audit's readers against bad databases: one line, an exit code, no traceback.

Real InfluxDB 1.6 and VictoriaMetrics for a wrong database, the wrong query API, an
answer too large and the accounts' write-back; a loopback socket that answers raw bytes
for what no real server does on request (garbage, a 401, an answer cut in the middle,
no answer at all).
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.ingest.audit import audit
from gateway.ingest.ledger_influxql import InfluxQLReader
from gateway.ingest.ledger_vm import VictoriaMetricsReader
from gateway.ingest.ledgerdb import LedgerReadError
from gateway.localservers import InfluxDB, VictoriaMetrics, free_port
from tests.support.ledger import LedgerDb, store_readings


class RawServer:
    """Answers every request on a loopback port with ``answer`` (raw bytes), after ``delay_s``."""

    def __init__(self, answer: bytes, delay_s: float = 0.0) -> None:
        outer = self
        self.answer, self.delay_s = answer, delay_s
        self._release = threading.Event()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if outer.delay_s:
                    outer._release.wait(outer.delay_s)
                self.wfile.write(outer.answer)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def http_answer(status: str, body: bytes, chunked_cut: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
    if chunked_cut:  # a chunked answer whose connection ends in the middle of a chunk
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"400\r\n" + body
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


GOOD_LINE = (
    b'{"results":[{"statement_id":0,"series":[{"name":"ledger_event","tags":{"gateway":"g",'
    b'"site":"s","type":"t"},"columns":["time","seq","id0","id1","id2"],"values":[[1,1,0,0,0]]'
    b',"partial":true}],"partial":true}]}\n'
)


SERIES_CUT_BY_A_ROW_LIMIT = (
    b'{"results":[{"statement_id":0,"series":[{"name":"ledger_manifest","columns":["time",'
    b'"seq"],"values":[[1,1]],"partial":true}]}]}\n'
)
VM_LINE = b'{"metric":{"__name__":"ledger_manifest_seq"},"values":[1],"timestamps":[1]}\n'


def chunks(*bodies: bytes, end: bool = False) -> bytes:
    """A chunked answer of these chunks; without ``end``, cut before the zero chunk."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in bodies)
    return head + body + (b"0\r\n\r\n" if end else b"")


@pytest.fixture
def raw() -> Iterator[list[RawServer]]:
    servers: list[RawServer] = []
    yield servers
    for server in servers:
        server.close()


def run(tmp_path: Path, url: str, api: str, more: str = "") -> int:
    """``gateway ingest audit`` with ``more`` TOML lines in [ingest.influx]; its exit code."""
    config = tmp_path / "ingest.toml"
    config.write_text(f'[ingest.influx]\nurl = "{url}"\ntoken = "t"\nquery_api = "{api}"\n{more}\n')
    return main(["ingest", "audit", "-c", str(config), "--since", "1h"])


@pytest.mark.parametrize(
    ("answer", "api", "message"),
    [
        (http_answer("200 OK", b"<html>hello</html>\n"), "influxql", "not an InfluxQL answer"),
        (http_answer("200 OK", b'{"results": 5}\n'), "influxql", "not an InfluxQL answer"),
        (
            http_answer(
                "200 OK", b'{"results":[{"series":[{"columns":["time"],"values":[[1,2]]}]}]}\n'
            ),
            "influxql",
            "rows do not match the columns",
        ),
        (
            http_answer("200 OK", b'{"metric":{},"values":["x"],"timestamps":[1]}\n'),
            "victoriametrics",
            "not a VictoriaMetrics export line",
        ),
        (
            http_answer("200 OK", b"[1, 2]\n"),
            "victoriametrics",
            "not a VictoriaMetrics export line",
        ),
        (
            http_answer("401 Unauthorized", b'{"error":"authorization failed"}'),
            "influxql",
            "not authorized: check [ingest.influx] token",
        ),
        (http_answer("403 Forbidden", b"{}"), "victoriametrics", "forbidden"),
        (
            http_answer("200 OK", GOOD_LINE[:80], chunked_cut=True),
            "influxql",
            "the answer broke off",
        ),
        (http_answer("200 OK", b'{"error":"timeout"}\n'), "influxql", "InfluxQL: timeout"),
        # whole chunks, then the connection ends without the last (zero) chunk
        (chunks(GOOD_LINE, GOOD_LINE), "influxql", "the answer broke off"),
        (chunks(VM_LINE, VM_LINE), "victoriametrics", "the answer broke off"),
        # a well-ended answer whose last result is still partial
        (
            chunks(b'{"results":[{"statement_id":0,"partial":true}]}\n', end=True),
            "influxql",
            "the answer ended before its last chunk",
        ),
        (http_answer("200 OK", b""), "influxql", "the answer ended before its last chunk"),
        # what InfluxDB 1.6 answers a query without chunking over its max-row-limit
        (
            http_answer("200 OK", SERIES_CUT_BY_A_ROW_LIMIT),
            "influxql",
            "the answer ended before its last chunk",
        ),
    ],
)
def test_a_bad_answer_is_one_line_and_exit_1(
    tmp_path: Path,
    raw: list[RawServer],
    capsys: pytest.CaptureFixture[str],
    answer: bytes,
    api: str,
    message: str,
) -> None:
    raw.append(RawServer(answer))
    code = run(tmp_path, raw[0].url, api)
    err = capsys.readouterr().err
    assert code == 1, err
    assert message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 2, err


def test_no_answer_times_out(
    tmp_path: Path, raw: list[RawServer], capsys: pytest.CaptureFixture[str]
) -> None:
    raw.append(RawServer(b"", delay_s=30))
    started = time.monotonic()
    code = run(tmp_path, raw[0].url, "influxql", "query_timeout_s = 0.5")
    assert code == 1 and time.monotonic() - started < 20
    assert "no answer within 0.5 s" in capsys.readouterr().err


@pytest.mark.parametrize("api", ["influxql", "victoriametrics"])
def test_a_database_that_is_down(
    tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(tmp_path, f"http://127.0.0.1:{free_port()}", api)
    err = capsys.readouterr().err
    assert code == 1 and "cannot read the ledger" in err and "Connection refused" in err, err


def test_query_api_unset_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(f'[ingest.influx]\nurl = "http://127.0.0.1:{free_port()}"\n')
    assert main(["ingest", "audit", "-c", str(config), "--since", "1h"]) == 2
    err = capsys.readouterr().err
    assert "query_api is not set" in err and 'query_api = "influxql"' in err, err


def test_wrong_database_and_wrong_api(
    tmp_path: Path,
    influxdb: InfluxDB,
    victoria: VictoriaMetrics,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(tmp_path, influxdb.url, "influxql", 'query_database = "nope"') == 1
    assert "database 'nope' not found" in capsys.readouterr().err
    assert run(tmp_path, influxdb.url, "victoriametrics") == 1
    assert "no /api/v1/export there: is it VictoriaMetrics?" in capsys.readouterr().err
    assert run(tmp_path, victoria.url, "influxql") == 1
    err = capsys.readouterr().err
    assert 'query_api = "victoriametrics"' in err and "Traceback" not in err, err


def test_an_answer_too_large_stops_the_read(tmp_path: Path, influxdb: InfluxDB) -> None:
    store_readings(tmp_path, LedgerDb("influxql", influxdb), 500)
    now = int(time.time() * 1000)
    fits = InfluxQLReader(influxdb.url, "roadside", chunk_size=50, max_line_bytes=16 * 1024)
    days = audit(fits, now - 3_600_000, now + 60_000).days  # chunks of 50 points fit
    assert [d.status for d in days] == ["complete"] and days[0].stored == 500
    big = InfluxQLReader(influxdb.url, "roadside", chunk_size=10_000, max_line_bytes=16 * 1024)
    with pytest.raises(LedgerReadError, match="an answer line is over 16384 bytes"):
        audit(big, now - 3_600_000, now + 60_000)


def test_the_accounts_not_written_is_exit_1_after_the_report(
    tmp_path: Path, influxdb: InfluxDB, capsys: pytest.CaptureFixture[str]
) -> None:
    # InfluxDB 1.6 has no /api/v2/write: the report is printed, then the write-back fails.
    store_readings(tmp_path, LedgerDb("influxql", influxdb), 20)
    code = run(tmp_path, influxdb.url, "influxql")
    out, err = capsys.readouterr()
    assert code == 1
    assert "COMPLETE: 20 of 20 seqs stored" in out
    assert "the accounts were not written" in err and "Traceback" not in err, err


def test_a_reader_streams_victoriametrics_lines(tmp_path: Path, victoria: VictoriaMetrics) -> None:
    store_readings(tmp_path, LedgerDb("victoriametrics", victoria), 300)
    now = int(time.time() * 1000)
    reader = VictoriaMetricsReader(victoria.url, rows_per_line=50, max_line_bytes=4096)
    days = audit(reader, now - 3_600_000, now + 60_000).days  # lines of 50 samples fit
    assert [(d.status, d.stored) for d in days] == [("complete", 300)]
    whole = VictoriaMetricsReader(victoria.url, rows_per_line=100_000, max_line_bytes=4096)
    with pytest.raises(LedgerReadError, match="over 4096 bytes"):
        audit(whole, now - 3_600_000, now + 60_000)


@pytest.mark.parametrize("api", ["victoriametrics", "influxql"])
def test_another_writers_points_are_not_receipts(
    api: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("victoria" if api == "victoriametrics" else "influxdb")
    db = LedgerDb(api, server)
    store_readings(tmp_path, db, 20)
    now = time.time_ns()
    foreign = [  # VictoriaMetrics stores the string as 0; InfluxDB would refuse it here
        b'ledger_event,gateway=other,site=s,type=t seq="abc",id0=1i,id1=2i,id2=3i',
        b"ledger_event,gateway=other,site=s,type=t seq=0i,id0=0i,id1=0i,id2=0i",
        b"ledger_event,gateway=other,site=s,type=t seq=7.5,id0=1.5,id1=2.5,id2=3.5",
        b"ledger_event,gateway=other,site=s,type=t unrelated=1i",
    ]
    for i, line in enumerate(foreign):
        with contextlib.suppress(urllib.error.HTTPError):  # a field type conflict
            db.write([line + f" {now + i * 1_000_000}".encode()])
    code, report = db.audit(tmp_path)
    assert code == 0, report
    assert [(d["unit"], d["status"], d["stored"]) for d in report["days"]] == [
        ("rsu-0001", "complete", 20)
    ]


def test_an_influxdb_with_authentication_refuses_a_wrong_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = InfluxDB(tmp_path / "influxdb", admin=("admin", "secret"))
    server.start()
    try:
        code = run(tmp_path, server.url, "influxql")  # token "t"
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert code == 1 and "HTTP 401; not authorized: check [ingest.influx] token" in err, err
    assert "secret" not in err and "Traceback" not in err
