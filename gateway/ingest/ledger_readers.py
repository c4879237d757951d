"""The ledger readers by ``[ingest.influx] query_api``: an explicit registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from gateway.config.ingest import InfluxConfig
from gateway.errors import UsageError
from gateway.ingest.ledger_influxql import InfluxQLReader
from gateway.ingest.ledger_vm import VictoriaMetricsReader
from gateway.ingest.ledgerdb import LedgerReader


def _victoriametrics(config: InfluxConfig) -> LedgerReader:
    return VictoriaMetricsReader(
        config.url, timeout_s=config.query_timeout_s, token=config.token.get_secret_value()
    )


def _influxql(config: InfluxConfig) -> LedgerReader:
    return InfluxQLReader(
        config.url,
        config.query_database or config.bucket,
        token=config.token.get_secret_value(),
        timeout_s=config.query_timeout_s,
        slice_s=config.query_slice_s,
    )


READERS: Final[dict[str, Callable[[InfluxConfig], LedgerReader]]] = {
    "victoriametrics": _victoriametrics,
    "influxql": _influxql,
}


class QueryApiUnsetError(UsageError):
    """The audit was asked to read the database without knowing its query API."""


def ledger_reader(config: InfluxConfig) -> LedgerReader:
    """The reader ``config.query_api`` names.

    Raises:
        QueryApiUnsetError: ``query_api`` is not set (the audit does not guess).
    """
    if config.query_api is None:
        error = QueryApiUnsetError(
            "[ingest.influx] query_api is not set: the ledger audit does not guess how "
            "to read the database back"
        )
        error.fix = (
            'set query_api = "influxql" for InfluxDB (1.x, 2.x with a DBRP mapping, 3.x) '
            'or "victoriametrics" in [ingest.influx]'
        )
        raise error
    return READERS[config.query_api](config)
