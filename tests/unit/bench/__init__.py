"""Unit tests of ``gateway.bench``."""
