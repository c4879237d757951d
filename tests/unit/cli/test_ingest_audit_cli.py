"""``gateway ingest audit``: its time arguments and its errors (no servers needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.commands.ingest_audit import parse_when
from gateway.errors import UsageError
from gateway.localservers import free_port

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()),
        ("2026-12-01T06:30", dt.datetime(2026, 12, 1, 6, 30, tzinfo=dt.UTC).timestamp()),
        ("2026-12-01T06:30Z", dt.datetime(2026, 12, 1, 6, 30, tzinfo=dt.UTC).timestamp()),
        ("2026-12-01T09:30+03:00", dt.datetime(2026, 12, 1, 6, 30, tzinfo=dt.UTC).timestamp()),
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        ("30m", NOW - 1800),
    ],
)
def test_times(text: str, expected: float) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7w", "", "2026-13-01"])
def test_bad_times_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="not a time"):
        parse_when(text, NOW)


def config(tmp_path: Path, api: str = "influxql") -> str:
    path = tmp_path / "ingest.toml"
    path.write_text(
        f'[ingest.influx]\nurl = "http://127.0.0.1:{free_port()}"\nquery_api = "{api}"\n'
    )
    return str(path)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--since", "1d", "--unit", "rsu 1"], 2, "a unit id is"),
        (["--since", "1h", "--until", "2h"], 2, "must come after"),
        (["--since", "soon"], 2, "not a time"),
        (["--since", "1h"], 1, "cannot read the ledger"),  # nothing listens there
    ],
)
def test_errors_are_one_line_and_an_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(["ingest", "audit", "-c", config(tmp_path), *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
