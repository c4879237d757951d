"""Unit tests of ``gateway.runtime``."""
