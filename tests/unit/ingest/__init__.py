"""Unit tests of ``gateway.ingest``."""
