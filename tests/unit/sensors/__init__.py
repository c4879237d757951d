"""Unit tests of ``gateway.sensors``."""
