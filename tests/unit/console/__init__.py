"""Unit tests of ``gateway.console``."""
