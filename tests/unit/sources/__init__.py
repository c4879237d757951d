"""Unit tests of ``gateway.sources``."""
