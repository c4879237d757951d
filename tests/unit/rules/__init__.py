"""Unit tests of ``gateway.rules``."""
