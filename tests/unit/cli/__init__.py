"""Unit tests of ``gateway.cli``."""
